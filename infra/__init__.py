"""rtdi: Uber-style real-time data infrastructure as a Pulumi program, one stack per region."""
