#!/bin/sh
# A stand-in for kubectl with a one-Deployment "cluster" kept in files under
# $FAKE_CLUSTER: "set image deployment/<name> <container>=<image>" records the
# image, "rollout status" reports the rollout in progress once, then complete,
# and every call is logged to $FAKE_CLUSTER/calls.
set -u
dir=${FAKE_CLUSTER:?FAKE_CLUSTER is not set}
echo "kubectl $*" >> "$dir/calls"
case "$1 ${2:-}" in
"set image")
  image=${4#*=}
  echo "$image" > "$dir/image"
  echo 0 > "$dir/polls"
  echo "${3} image updated";;
"rollout status")
  n=$(( $(cat "$dir/polls") + 1 ))
  echo "$n" > "$dir/polls"
  if [ "$n" -lt 2 ]; then
    echo "Waiting for ${3} rollout to finish: 1 of 3 updated replicas are available..."
    exit 1
  fi
  echo "${3} successfully rolled out";;
*)
  echo "error: the stand-in kubectl does not know: $*" >&2
  exit 1;;
esac
