# A flow image for Python flows with Weir's SDK, FROM scratch: the interpreter and its
# standard library are copied from the build machine, so no base image is pulled.
#
# Context: made by deploy/docker/rootfs.sh with --python, the SDK and the flows:
#     deploy/docker/rootfs.sh target/image-pyflows --python python3 \
#         --copy sdk/python/src/weir /opt/weir/lib/weir --copy flows /opt/weir/app/flows
#     docker build -f deploy/docker/flows-python.Dockerfile \
#         --build-arg PYTHONHOME="$(cut -d= -f2 target/image-pyflows/python.env)" -t pyflows:$COMMIT target/image-pyflows
#
# Extra packages (boto3 for s3_download): pip install --target <context>/rootfs/opt/weir/lib
# boto3 before the build. The deployment's command is ["python3", "-m", "weir", "flows"],
# run from /opt/weir/app.
FROM scratch
ARG PYTHONHOME=/usr
COPY rootfs/ /
ENV PATH=/usr/local/bin \
    PYTHONHOME=${PYTHONHOME} \
    PYTHONPATH=/opt/weir/lib \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WEIR_HOME=/tmp/weir \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 10001:10001
WORKDIR /opt/weir/app
CMD ["python3", "-m", "weir", "flows", "describe"]
