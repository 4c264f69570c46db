"""Response playbooks: tiered, governed, audited actions."""
