# launch/lib/hosts.bash — host lists for launch/cluster and launch/dlc (sourced, not run).
#
# A host list is two parallel arrays: HOSTS (names, each once, in first-seen order) and SLOTS
# (a positive integer, or "" when the source gave none). Parsers return 1 and leave a message
# in HOSTS_ERROR on bad input; they never exit, so each script picks its own exit code.

HOSTS=()
SLOTS=()
HOSTS_ERROR=""

# hosts_add NAME SLOTS — appends a host, or adds SLOTS to a host already listed (Open MPI
# sums the slots of a host that appears on several hostfile lines).
hosts_add() {
    local name="$1" slots="$2" i
    for i in "${!HOSTS[@]}"; do
        if [[ "${HOSTS[$i]}" == "$name" ]]; then
            if [[ -n "${SLOTS[$i]}" && -n "$slots" ]]; then
                SLOTS[$i]=$((SLOTS[$i] + slots))
            elif [[ -n "$slots" ]]; then
                SLOTS[$i]="$slots"
            fi
            return 0
        fi
    done
    HOSTS+=("$name")
    SLOTS+=("$slots")
}

# hosts_valid_name NAME — a host name or address as a hostfile may hold it.
hosts_valid_name() {
    [[ "$1" =~ ^[A-Za-z0-9_.:%-]+$ && "$1" != -* ]]
}

# hosts_parse_hostfile FILE — Open MPI's format: `host [slots=K] [max_slots=M] …`, one host
# a line, `#` comments and blank lines ignored. Other keywords are left to mpirun.
hosts_parse_hostfile() {
    local file="$1" line number=0 name word slots
    local -a words
    HOSTS=() SLOTS=() HOSTS_ERROR=""
    if [[ ! -e "$file" ]]; then HOSTS_ERROR="hostfile not found: $file"; return 1; fi
    if [[ ! -f "$file" || ! -r "$file" ]]; then HOSTS_ERROR="hostfile is not a readable file: $file"; return 1; fi
    while IFS= read -r line || [[ -n "$line" ]]; do
        number=$((number + 1))
        line="${line%%#*}"
        read -r -a words <<<"$line" || true
        [[ ${#words[@]} -gt 0 ]] || continue
        name="${words[0]}"
        if ! hosts_valid_name "$name"; then
            HOSTS_ERROR="$file:$number: '$name' is not a host name"
            return 1
        fi
        slots=""
        for word in "${words[@]:1}"; do
            case "$word" in
                slots=* | max_slots=* | max-slots=*)
                    if [[ ! "${word#*=}" =~ ^[1-9][0-9]*$ ]]; then
                        HOSTS_ERROR="$file:$number: ${word%%=*} must be a positive integer, got '${word#*=}'"
                        return 1
                    fi
                    [[ "$word" == slots=* ]] && slots="${word#*=}"
                    ;;
            esac
        done
        hosts_add "$name" "$slots"
    done <"$file"
    if [[ ${#HOSTS[@]} -eq 0 ]]; then HOSTS_ERROR="hostfile lists no hosts: $file"; return 1; fi
}

# hosts_parse_list VARNAME VALUE — "h1,h2" or "h1:4,h2:4" (the `--host` syntax of mpirun).
hosts_parse_list() {
    local variable="$1" value="$2" item name slots
    local -a items
    HOSTS=() SLOTS=() HOSTS_ERROR=""
    IFS=',' read -r -a items <<<"$value" || true
    for item in "${items[@]}"; do
        item="${item//[[:space:]]/}"
        if [[ -z "$item" ]]; then
            HOSTS_ERROR="$variable has an empty entry: '$value' (expected h1,h2 or h1:slots,h2:slots)"
            return 1
        fi
        name="$item" slots=""
        # One colon: host:slots. None, or several (an IPv6 address): a host alone.
        if [[ "$item" != *:*:* && "$item" =~ ^(.+):([^:]*)$ ]]; then
            name="${BASH_REMATCH[1]}" slots="${BASH_REMATCH[2]}"
            if [[ ! "$slots" =~ ^[1-9][0-9]*$ ]]; then
                HOSTS_ERROR="$variable: slots of '$name' must be a positive integer, got '$slots'"
                return 1
            fi
        fi
        if ! hosts_valid_name "$name"; then
            HOSTS_ERROR="$variable: '$name' is not a host name"
            return 1
        fi
        hosts_add "$name" "$slots"
    done
    if [[ ${#HOSTS[@]} -eq 0 ]]; then HOSTS_ERROR="$variable lists no hosts"; return 1; fi
}

# hosts_total_slots — prints the sum of SLOTS, or nothing when a host has no slot count.
hosts_total_slots() {
    local total=0 s
    for s in "${SLOTS[@]}"; do
        [[ -n "$s" ]] || return 0
        total=$((total + s))
    done
    echo "$total"
}

# hosts_write_hostfile FILE — writes HOSTS/SLOTS in Open MPI's format.
hosts_write_hostfile() {
    local file="$1" i
    : >"$file"
    for i in "${!HOSTS[@]}"; do
        if [[ -n "${SLOTS[$i]}" ]]; then
            echo "${HOSTS[$i]} slots=${SLOTS[$i]}" >>"$file"
        else
            echo "${HOSTS[$i]}" >>"$file"
        fi
    done
}

# quote_command ARGS… — prints a command so that a shell reads it back as the same words.
quote_command() {
    local out=() word
    for word in "$@"; do
        if [[ "$word" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
            out+=("$word")
        else
            out+=("'${word//\'/\'\\\'\'}'")
        fi
    done
    echo "${out[*]}"
}
