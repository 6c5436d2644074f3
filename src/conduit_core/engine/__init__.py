"""The engine: plans a run and streams each resource from source to destination."""
