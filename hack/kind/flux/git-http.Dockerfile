# A Git server for the Flux scenario: Debian's git-http-backend behind lighttpd, on port 8080,
# serving an empty bare repository /git/devserver.git (branch main) that the test pushes to.
# /srv/git and /tmp are the pod's emptyDir volumes (read-only root file system).
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      git lighttpd \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
    && git --version && lighttpd -v
COPY lighttpd.conf /etc/lighttpd/git.conf
ENV HOME=/tmp
USER 65532:65532
ENTRYPOINT ["sh", "-c", "git init -q --bare -b main /srv/git/devserver.git && exec lighttpd -D -f /etc/lighttpd/git.conf"]
