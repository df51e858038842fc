# The weir image: server, agent and `weir exec` in one binary, FROM scratch.
#
# Context: made by deploy/docker/rootfs.sh from the weir binary (any registry, or none):
#     cargo build --release --features weir-cli/aws
#     deploy/docker/rootfs.sh target/image-weir target/release/weir
#     docker build -f deploy/docker/weir.Dockerfile -t weir:$(git rev-parse --short HEAD) target/image-weir
#
# Runs as an unprivileged user with a read-only root: WEIR_HOME is under /tmp (a volume on
# ECS). The default command is the server on all interfaces (TLS is the load balancer's);
# `agent …` or `exec …` replace it.
FROM scratch
COPY rootfs/ /
ENV WEIR_HOME=/tmp/weir \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 10001:10001
EXPOSE 4200
ENTRYPOINT ["/usr/local/bin/weir"]
CMD ["server", "--bind", "0.0.0.0:4200"]
