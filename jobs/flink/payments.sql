INSERT INTO ledger
SELECT payment_id, rider_id, amount_cents
FROM payment_events
WHERE amount_cents > 0;
