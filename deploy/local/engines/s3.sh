# shellcheck shell=bash
# Part of deploy/local/engines.sh: one real S3 object store, instance `s3`, with
# the S3 API on http://127.0.0.1:8333, bucket `alpes` and fixed dev credentials.
# Server: the Versity S3 Gateway (versitygw, Apache-2.0) on a POSIX folder by
# default: one process, one port, built from the Go module proxy in about 2.5
# minutes on a fresh 2-core machine. With ALPES_S3_SERVER=seaweedfs,
# SeaweedFS `weed mini` (Apache-2.0) instead: a distributed store in one
# process, but its build took 8 to 17 minutes here (245 modules), too long for
# a fresh CI machine. Both are real S3 servers (SigV4, multipart, conditional
# writes); both are built once and cached.
# Owns: $ENGINES_CACHE/s3/<server>-<version>/ (the binary) and DIR/s3/
# (server: the server this DIR was made with, s3.json: SeaweedFS identities,
# data/: the store, *.sock: SeaweedFS local sockets).

S3_PORT=8333
S3_BUCKET=alpes
S3_REGION=us-east-1
# Fixed dev credentials; the store listens on 127.0.0.1 only.
S3_KEY=alpes-dev
S3_SECRET=alpes-dev-secret
# SeaweedFS 4.53 (`weed version`); its tags are not semver, so a pseudo-version.
# Tags from 4.24 on have replace directives in go.mod, so `go install` refuses
# them (golang/go#44840); a build inside the downloaded module honours them.
SEAWEEDFS_VERSION="${ALPES_SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"
VERSITYGW_VERSION="${ALPES_VERSITYGW_VERSION:-v1.8.0}"
# SeaweedFS mini's other listeners (all on 127.0.0.1). Each gRPC port is the
# HTTP port + 10000: 19333, 19340, 18888, 18333 (S3) and 22535 (admin).
# Given explicitly, so mini fails on a busy port instead of moving to another.
S3_WEED_PORTS=(-master.port=9333 -volume.port=9340 -filer.port=8888 -admin.port=12535)
# sha256 of an empty body: versitygw, like AWS, wants x-amz-content-sha256 on
# every signed request, and curl --aws-sigv4 does not send it.
S3_EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

s3_instances() { echo s3; }
s3_serial() { return 1; }
# Ready in 2-5 s once built (SeaweedFS starts master, volume, filer, S3, admin in turn).
s3_ready_timeout() { echo 120; }

# s3_server DIR: the server of DIR (the one it was made with, else ALPES_S3_SERVER).
s3_server() {
  local made=""
  [ -f "$1/s3/server" ] && made="$(cat "$1/s3/server")"
  local want="${ALPES_S3_SERVER:-${made:-versitygw}}"
  case "$want" in seaweedfs|versitygw) ;; *) die "ALPES_S3_SERVER is seaweedfs or versitygw, not $want" ;; esac
  [ -z "$made" ] || [ "$made" = "$want" ] || die "$1/s3 holds $made data; stop it and use a new DIR for $want"
  printf '%s\n' "$want"
}

# s3_go_build BIN MODULE@VERSION PACKAGE: builds PACKAGE of the module into BIN, once.
s3_go_build() {
  local bin="$1" mod="$2" pkg="$3" src scratch rc=0
  [ -x "$bin" ] && return 0
  command -v go >/dev/null 2>&1 || die "Go is needed to build $mod (from the Go module proxy)"
  mkdir -p "$(dirname "$bin")"
  log "building $pkg of $mod with Go (once; cached as $bin; takes minutes)"
  # The module sources and Go's build cache (gigabytes) go to a scratch folder
  # removed after the build: only the binary is kept. GOTOOLCHAIN=local: fail
  # rather than fetch a newer Go; GOWORK=off and the cache folder as working
  # directory: no project's go.mod or go.work applies; -modcacherw: the
  # scratch module cache can be deleted.
  scratch="$(dirname "$bin")/build.tmp"
  rm -rf "$scratch"
  mkdir -p "$scratch"
  src="$(cd "$(dirname "$bin")" && GOWORK=off GOFLAGS='-mod=mod -modcacherw' GOTOOLCHAIN=local \
    GOMODCACHE="$scratch/mod" GOCACHE="$scratch/cache" \
    go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')" || rc=$?
  if [ "$rc" -ne 0 ] || [ -z "$src" ] || [ ! -d "$src/$pkg" ]; then
    rm -rf "$scratch"
    die "go mod download $mod gave no source folder"
  fi
  # -s -w: no symbol table or DWARF (SeaweedFS: 164 MB instead of 233 MB).
  (cd "$src" && GOWORK=off GOFLAGS='-buildvcs=false -modcacherw' GOTOOLCHAIN=local \
    GOMODCACHE="$scratch/mod" GOCACHE="$scratch/cache" \
    go build -trimpath -ldflags='-s -w' -o "$bin.tmp" "./$pkg") >"$bin.log" 2>&1 || rc=$?
  rm -rf "$scratch"
  if [ "$rc" -ne 0 ]; then
    tail -n 30 "$bin.log" >&2
    die "could not build $mod (log: $bin.log)"
  fi
  mv "$bin.tmp" "$bin"
}

# s3_bin SERVER: the server's binary, built into the cache once.
s3_bin() {
  local bin
  if [ "$1" = versitygw ]; then
    bin="$ENGINES_CACHE/s3/versitygw-$VERSITYGW_VERSION/versitygw"
    s3_go_build "$bin" "github.com/versity/versitygw@$VERSITYGW_VERSION" cmd/versitygw
  else
    bin="$ENGINES_CACHE/s3/seaweedfs-$SEAWEEDFS_VERSION/weed"
    s3_go_build "$bin" "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" weed
  fi
  printf '%s\n' "$bin"
}

# The server a new DIR gets (ALPES_S3_SERVER, else versitygw), built into the cache (once).
s3_download() { s3_bin "${ALPES_S3_SERVER:-versitygw}" >/dev/null; }

s3_prepare() {
  local dir="$1" server bin d="$1/s3"
  server="$(s3_server "$dir")"
  mkdir -p "$d/data"
  printf '%s\n' "$server" >"$d/server"
  if ! running "$dir" s3 && port_open 127.0.0.1 "$S3_PORT"; then
    die "127.0.0.1:$S3_PORT is taken by another process"
  fi
  bin="$(s3_bin "$server")"
  if [ "$server" = versitygw ]; then
    # ROOT_ACCESS_KEY/ROOT_SECRET_KEY: the gateway's root account. The posix
    # backend keeps a bucket as a folder and object metadata in user xattrs
    # (ext4, xfs, btrfs; tmpfs only on Linux >= 6.6).
    write_launcher "$dir" s3 env "ROOT_ACCESS_KEY=$S3_KEY" "ROOT_SECRET_KEY=$S3_SECRET" \
      "$bin" --port "127.0.0.1:$S3_PORT" posix "$d/data"
    return 0
  fi
  # One static identity with every action (format of docker/compose/s3.json).
  cat >"$d/s3.json" <<JSON
{"identities":[{"name":"alpes","credentials":[{"accessKey":"$S3_KEY","secretKey":"$S3_SECRET"}],
 "actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
  # `weed mini` rather than `weed server -filer -s3`: mini stops its parts in
  # order (S3, admin, filer, volume, master) with a 1 s volume pre-stop, where
  # server's filer lost its metadata-log flush on SIGTERM (volume gone first)
  # and took 16-30 s. Mini also runs an admin UI and maintenance worker (no
  # flag turns them off). Flags: -ip.bind defaults to 0.0.0.0; telemetry
  # would post to telemetry.seaweedfs.com; -idleTimeout=5 (default 30) lets the
  # volume server's graceful stop end in ~1 s instead of waiting out idle
  # keep-alive connections; no WebDAV, Iceberg or Lance listeners; the legacy
  # admin port (23646) off. env -u: weed turns AWS_ACCESS_KEY_ID/SECRET in its
  # environment into one more admin identity.
  write_launcher "$dir" s3 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
    "$bin" mini -dir="$d/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 "${S3_WEED_PORTS[@]}" \
    -s3.port="$S3_PORT" -s3.config="$d/s3.json" -master.telemetry=false -idleTimeout=5 \
    -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 -admin.port.legacy=0 \
    -filer.localSocket="$d/filer.sock" -s3.localSocket="$d/s3.sock"
}

# s3_curl ARGS...: one SigV4-signed request with the dev credentials.
s3_curl() {
  curl -sS --max-time 10 -H "x-amz-content-sha256: $S3_EMPTY_SHA" \
    --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_KEY:$S3_SECRET" "$@"
}

# A signed ListBuckets answers 200: the credentials are loaded and the store answers.
s3_ready() { s3_curl -f -o /dev/null "http://127.0.0.1:$S3_PORT/"; }

# Creates the bucket unless it exists (CreateBucket answers 409
# BucketAlreadyOwnedByYou then), and checks it with HeadBucket.
s3_post() {
  local url="http://127.0.0.1:$S3_PORT/$S3_BUCKET" code
  code="$(s3_curl -o /dev/null -w '%{http_code}' -X PUT "$url" || true)"
  case "$code" in
    200) log "created bucket $S3_BUCKET" ;;
    409) ;;
    *) die "CreateBucket $S3_BUCKET answered ${code:-nothing}" ;;
  esac
  s3_curl -f -o /dev/null -I "$url" || die "bucket $S3_BUCKET is missing after CreateBucket"
}

s3_env() {
  echo "export ALPES_S3_BUCKET=$S3_BUCKET"
  echo "export ALPES_S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
  echo "export ALPES_S3_REGION=$S3_REGION"
  echo "export AWS_ACCESS_KEY_ID=$S3_KEY"
  echo "export AWS_SECRET_ACCESS_KEY=$S3_SECRET"
}
