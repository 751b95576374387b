"""DynamoDB adapters for the domain's repositories. Every key starts with the tenant (design rule 5)."""
