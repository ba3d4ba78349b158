#!/usr/bin/env bash
# Container HEALTHCHECK: GET /healthz on the local port, healthy on HTTP 200.
# Plain bash (/dev/tcp) rather than curl or wget, so the runtime image needs
# no extra package (and no pinned apt versions) just for this probe.
set -euo pipefail
port=${SERESNEXT_PORT:-8080}
# The server speaks HTTP/1.1; asking for HTTP/1.0 makes it close the
# connection after one answer, so reading the status line cannot hang.
exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r -t 5 _ status _ <&3
[ "${status}" = "200" ]
