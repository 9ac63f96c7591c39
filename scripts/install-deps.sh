#!/usr/bin/env bash
# Installs everything kci needs to build, test and run on Debian 12 (as root, via apt-get).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: run as root (sudo $0)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
	build-essential cmake pkg-config clang clang-format libclang-rt-14-dev \
	libarchive-dev libjson-c-dev libcmocka-dev libseccomp-dev libcurl4-openssl-dev \
	libgit2-dev libyaml-dev libssl-dev libmicrohttpd-dev libsqlite3-dev \
	qemu-system-x86 e2fsprogs kmod cpio bc procps python3 ca-certificates \
	docker-registry umoci skopeo zstd apache2-utils curl passt iproute2 nftables \
	chromium
# The web UI's browser test drives chromium with playwright-core from npm. A machine whose
# Node.js comes from elsewhere (NodeSource ships npm inside nodejs, and conflicts with
# Debian's npm) keeps it.
if ! command -v npm >/dev/null; then
	apt-get install -y -q --no-install-recommends nodejs npm
fi
