"""HTTP adapter: FastAPI app, routers, Pydantic schemas, problem+json errors."""
