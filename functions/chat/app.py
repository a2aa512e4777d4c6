"""The chat function: completions, models and generations (DESIGN §2, §3).

Deployed behind the AWS Lambda Web Adapter (`run.sh` serves `app` with uvicorn) so SSE
streams through API Gateway unbuffered; `handler` serves the same app through Mangum
for `sam local` and the API Gateway event tests.
"""

from mangum import Mangum

from gatewayz.http import create_app

app = create_app("chat")
handler = Mangum(app, lifespan="off")
