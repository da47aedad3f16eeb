# One image for the scheduler, the workers and the notebook server.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY iterable_dask ./iterable_dask
RUN pip install --no-cache-dir ".[dev,notebook,s3]" jupyterlab
COPY notebooks ./notebooks
