INSERT INTO surge
SELECT hexagon, window_end, COUNT(*) AS demand
FROM TABLE(TUMBLE(TABLE trips, DESCRIPTOR(event_time), INTERVAL '1' MINUTE))
WHERE status = 'requested'
GROUP BY hexagon, window_start, window_end;
