"""The REST API: FastAPI app served by Mangum in Lambda and uvicorn locally."""
