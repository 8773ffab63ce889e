#!/bin/sh
# record.sh re-records the inspect answers in this directory from a real engine with the docker
# CLI: it builds the test image, runs the containers described in README.md, saves what
# GET /v1.41/containers/{id}/json and GET /v1.41/images/{id}/json answer, and removes everything.
# Run it from anywhere on a machine with dockerd, the docker CLI, curl, jq and Go.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
sock=/var/run/docker.sock
ctx=$(mktemp -d)

cleanup() {
	docker rm -fv rec-side rec-linked rec-entry rec-host rec-wide >/dev/null 2>&1 || true
	docker network rm rec-net1 rec-net2 >/dev/null 2>&1 || true
	docker volume rm rec-data >/dev/null 2>&1 || true
	docker rmi rec-fidelity:1 >/dev/null 2>&1 || true
	rm -rf "$ctx"
}
trap cleanup EXIT

(cd "$here" && CGO_ENABLED=0 go build -o "$ctx/app" ./app)
cp "$here/Dockerfile" "$ctx/"
DOCKER_BUILDKIT=0 docker build -q -t rec-fidelity:1 "$ctx" >/dev/null

docker network create --subnet 10.213.71.0/24 rec-net1 >/dev/null
docker network create --subnet 10.213.72.0/24 rec-net2 >/dev/null
docker volume create rec-data >/dev/null

docker create --name rec-wide \
	--network rec-net1 --ip 10.213.71.10 --network-alias web --network-alias api \
	-e APP_MODE=prod -e APP_LEVEL=debug -e EXTRA=1 \
	-u 1001 -w /work \
	-p 127.0.0.1:38480:8080 -p 38481:7070 --expose 6060 \
	-v rec-data:/var/lib/rec -v /cache \
	--mount type=bind,source=/etc/os-release,target=/etc/host-os-release,readonly \
	--tmpfs /run/rec:size=1m \
	--restart on-failure:3 \
	-l org.example.team=core -l org.example.tier=frontend -l rec.custom=yes -l outpost.internal.replacing=rec-wide \
	--memory 64m --memory-reservation 32m --cpus 0.5 --cpu-shares 512 \
	--cap-add NET_ADMIN --cap-drop MKNOD \
	--log-driver json-file --log-opt max-size=1m --log-opt max-file=2 \
	--add-host db.example:10.9.8.7 \
	--dns 10.9.8.53 --dns-search example.test --dns-option ndots:2 \
	--health-interval 5s --health-retries 7 \
	--stop-timeout 20 \
	rec-fidelity:1 --port 9999 >/dev/null
docker network connect --alias second --ip 10.213.72.10 rec-net2 rec-wide
docker network connect bridge rec-wide
docker start rec-wide >/dev/null

docker run -d --name rec-entry --uts host --entrypoint /app rec-fidelity:1 serve >/dev/null
docker run -d --name rec-host --hostname custom-host --domainname example.test rec-fidelity:1 >/dev/null
docker run -d --name rec-side --network container:rec-wide rec-fidelity:1 >/dev/null
docker run -d --name rec-linked --link rec-wide:db rec-fidelity:1 >/dev/null

get() { curl -fsS --unix-socket "$sock" "http://docker/v1.41$1" | jq . >"$here/$2"; }
for c in rec-wide rec-entry rec-host rec-side rec-linked; do
	get "/containers/$c/json" "$c.json"
done
get /images/rec-fidelity:1/json image.json
