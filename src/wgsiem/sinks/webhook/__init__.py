"""The `webhook` sink: templated JSON to any HTTP endpoint, through the durable outbox."""
