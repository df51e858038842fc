# A flow image for a Rust flows binary (the SDK reports the run itself), FROM scratch.
#
# Context: made by deploy/docker/rootfs.sh from the flows binary:
#     cargo build --release -p my-flows
#     deploy/docker/rootfs.sh target/image-flows target/release/my-flows
#     docker build -f deploy/docker/flows-rust.Dockerfile -t flows:$COMMIT target/image-flows
#
# The image has no default command: the agent's launcher runs `<command> run <flow> …` from
# the deployment's weir.toml (command = ["my-flows"]); `docker run IMAGE my-flows describe`
# lists its flows.
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin \
    WEIR_HOME=/tmp/weir \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 10001:10001
WORKDIR /tmp
