"""The local cloud: moto's server for the AWS APIs plus the event delivery moto does not do
(schedules, SQS -> Lambda, DynamoDB streams -> Lambda), a replay clock and real market data.
`tradeflow local up` (and `make run`) starts it."""
