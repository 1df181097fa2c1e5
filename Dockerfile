# The etl_assets code location server, as Dagster deploys user code: a gRPC server the
# webserver and daemon query, whose image also runs each launched run (ECS task or K8s job).
# Build: docker build -t etl-assets:$(git rev-parse --short HEAD) .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DAGSTER_HOME=/opt/dagster/dagster_home
WORKDIR /opt/dagster/app

# production install: no embedded PostgreSQL or moto (those are the `local` extra)
COPY pyproject.toml README.md ./
COPY etl_assets ./etl_assets
RUN pip install --no-cache-dir . && mkdir -p "$DAGSTER_HOME"
COPY deploy/dagster.yaml $DAGSTER_HOME/dagster.yaml

RUN useradd --create-home --uid 10001 dagster && chown -R dagster "$DAGSTER_HOME"
USER dagster

EXPOSE 4000
# settings (ETL_WAREHOUSE_*, ETL_REDSHIFT_IAM_ROLE, ETL_S3_BUCKET, AWS_REGION, DAGSTER_PG_*)
# come from the task definition or pod environment, never from the image
CMD ["dagster", "api", "grpc", "--host", "0.0.0.0", "--port", "4000", "--module-name", "etl_assets.definitions"]
