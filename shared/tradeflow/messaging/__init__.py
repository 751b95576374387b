"""Queues: the SQS adapter behind the message port."""
