# Sourced by check-policies.sh and sign-policies.sh: which files are Palisade policies.
#
# policy_files DIR...: every YAML file under the directories whose apiVersion is
# palisade.dev/v1 and kind is Policy, NUL-separated and sorted (node_modules and
# .git skipped), for `mapfile -d ''`.
policy_files() {
  find "$@" -type d \( -name node_modules -o -name .git \) -prune -o \
    -type f \( -name '*.yaml' -o -name '*.yml' \) -print0 |
  xargs -0 -r grep -lZ -E '^kind:[[:space:]]*Policy[[:space:]]*$' |
  xargs -0 -r grep -lZ -E '^apiVersion:[[:space:]]*palisade\.dev/v1[[:space:]]*$' |
  sort -z
}
