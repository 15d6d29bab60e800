# syntax=docker/dockerfile:1
# syncgate: one static binary in an otherwise empty image.
#
# The build stage runs the project's own static build (scripts/build-static.sh:
# libcurl and cJSON from Debian's source packages, everything else from Debian's
# static archives) and assembles the image's root filesystem with it. The test
# suite runs the same script, with the same arguments, in a copy of this build
# context and runs the result in an empty chroot (tests/delivery/test_static.py).
#
#   docker build -t kubestock/syncgate:0.1.0 .
#   docker run --rm kubestock/syncgate:0.1.0 version

FROM debian:bookworm AS build
COPY . /src
# The cache mount keeps the built libcurl and cJSON between image builds.
RUN --mount=type=cache,target=/var/cache/syncgate-static \
    /src/scripts/build-static.sh --builddir /build --rootfs /rootfs

FROM scratch
# /usr/local/bin/syncgate, /usr/local/bin/curl (for kubectl exec ... curl against
# syncgate serve), CA certificates, passwd/group with uid 65532,
# nsswitch.conf, /etc/syncgate/profiles, /tmp
COPY --from=build /rootfs/ /
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/syncgate"]
CMD ["run"]
