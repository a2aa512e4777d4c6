#!/bin/sh
# Entry point under the AWS Lambda Web Adapter: a long-lived ASGI server the adapter
# forwards API Gateway requests to, streaming the response as it is written.
# The client IP comes from API Gateway's request context, never from X-Forwarded-For.
exec python -m uvicorn --loop uvloop --host 127.0.0.1 --port "${PORT:-8080}" --no-access-log \
    --no-proxy-headers --timeout-keep-alive 60 app:app
