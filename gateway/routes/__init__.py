"""The gateway's HTTP routes: the OpenAI model routes (openai.py), Anthropic's Messages
(messages.py), listings and the admin API (admin.py), the operator's logs, requests and
benchmarks (operations.py); model_route.py is what every route that reaches a model
starts with."""
