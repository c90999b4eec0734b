#!/usr/bin/env bash
# Regenerate the golden exporter captures in testdata/captures/ from
# testdata/input/traffic.pcap, using real exporters (softflowd, fprobe,
# pmacctd, nfreplay). Needs root (tcpdump on lo, a veth pair for fprobe).
#
#   sudo testdata/regen.sh            # everything
#   sudo testdata/regen.sh NAME...    # only these captures (e.g. fprobe-v5)
#
# Debian packages: softflowd fprobe pmacct nfdump nfdump-sflow tshark tcpdump
# python3 iproute2 (see README.md). Every capture is a classic pcap taken with
# tcpdump on lo, filtered to the export port; NAME.totals.json is computed by
# tshark (and nfdump, where it can read the format) via tshark_totals.py.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IN="$HERE/input/traffic.pcap"
OUT="$HERE/captures"
PY=python3
WORK=$(mktemp -d /tmp/flowsight-regen.XXXXXX)
VETH_A=fsreplay0   # fprobe input: frames are sent into VETH_A ...
VETH_B=fsreplay1   # ... and fprobe captures them on VETH_B
PIDS=()

log() { printf '==> %s\n' "$*"; }
run() { printf '    $ %s\n' "$*"; "$@"; }

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    ip link del "$VETH_A" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# forget a background pid once it has been stopped
forget() {
    local p keep=()
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

stop() {  # stop PID [SIGNAL]
    kill -"${2:-TERM}" "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    forget "$1"
}

need() {
    command -v "$1" >/dev/null 2>&1 || { echo "missing command $1 (Debian package $2)" >&2; exit 1; }
}

freeport() { $PY "$HERE/sink.py" freeport "$1"; }

# start_sink udp|tcp PORT -> sets SINK_PID
start_sink() {
    $PY "$HERE/sink.py" "$1" "$2" &
    SINK_PID=$!
    PIDS+=("$SINK_PID")
    sleep 0.3
}

# start_capture NAME udp|tcp PORT -> sets CAP_PID
start_capture() {
    local name=$1 proto=$2 port=$3 err="$WORK/$1.tcpdump.err"
    rm -f "$OUT/$name.pcap"
    tcpdump -i lo -n -U -Z root -s 0 -w "$OUT/$name.pcap" \
        "host 127.0.0.1 and $proto port $port" 2>"$err" &
    CAP_PID=$!
    PIDS+=("$CAP_PID")
    local i
    for i in $(seq 1 50); do
        grep -qs 'listening on' "$err" && return 0
        sleep 0.1
    done
    cat "$err" >&2
    echo "tcpdump did not start" >&2
    exit 1
}

stop_capture() {
    sleep 1
    stop "$CAP_PID" INT
    sed -n 's/^/    tcpdump: /p' "$WORK/$1.tcpdump.err" | grep -v 'listening on' || true
}

# reference collector: replay the captured export payloads into nfcapd/sfcapd
# and let nfdump count them. nfdump_ref NAME udp|tcp-ipfix PORT nfcapd|sfcapd
nfdump_ref() {
    local name=$1 how=$2 port=$3 daemon=$4
    local dir="$WORK/ref-$name" rport
    mkdir -p "$dir"
    rport=$(freeport udp)
    $daemon -b 127.0.0.1 -p "$rport" -w "$dir" -t 3600 >"$dir.log" 2>&1 &
    local cpid=$!
    PIDS+=("$cpid")
    sleep 1
    if [[ $how == udp ]]; then
        $PY "$HERE/pcap_replay.py" udp-payloads "$OUT/$name.pcap" "127.0.0.1:$rport" --dport "$port" | sed 's/^/    /'
    else
        $PY "$HERE/pcap_replay.py" tcp-ipfix "$OUT/$name.pcap" "127.0.0.1:$rport" --dport "$port" | sed 's/^/    /'
    fi
    sleep 1
    stop "$cpid" TERM
    NFDUMP_FILE=$(ls "$dir"/nfcapd.* 2>/dev/null | grep -v current | head -1 || true)
    if [[ -z $NFDUMP_FILE ]]; then
        echo "    $daemon wrote no file:" >&2
        cat "$dir.log" >&2
        return 1
    fi
}

# totals NAME FORMAT udp|tcp PORT TOOL [REFKIND]
#   REFKIND: nfcapd | sfcapd | nfcapd-tcp | none
totals() {
    local name=$1 format=$2 proto=$3 port=$4 tool=$5 ref=${6:-none}
    local args=("$OUT/$name.pcap" --format "$format" --transport "$proto" --port "$port" --tool "$tool" -o "$OUT/$name.totals.json")
    case $ref in
        nfcapd) nfdump_ref "$name" udp "$port" nfcapd && args+=(--nfdump-file "$NFDUMP_FILE") ;;
        sfcapd) nfdump_ref "$name" udp "$port" sfcapd && args+=(--nfdump-file "$NFDUMP_FILE") ;;
        nfcapd-tcp) nfdump_ref "$name" tcp-ipfix "$port" nfcapd && args+=(--nfdump-file "$NFDUMP_FILE") ;;
    esac
    $PY "$HERE/tshark_totals.py" "${args[@]}" | sed 's/^/    /'
    ls -l "$OUT/$name.pcap" | awk '{print "    " $5 " bytes  " $NF}'
}

# ---------------------------------------------------------------- softflowd
softflowd_capture() {  # NAME VERSION udp|tcp FORMAT
    local name=$1 ver=$2 proto=$3 format=$4 port
    log "$name: softflowd -v $ver -P $proto"
    port=$(freeport "$proto")
    start_sink "$proto" "$port"
    start_capture "$name" "$proto" "$port"
    local ctl="$WORK/softflowd.ctl" extra=()
    [[ $proto == tcp ]] && extra=(-P tcp)
    local cmd=(softflowd -d -a -r input/traffic.pcap -n "127.0.0.1:$port" -v "$ver" "${extra[@]}" -c "$ctl" -p "$WORK/softflowd.pid")
    printf '    $ %s\n' "${cmd[*]}"
    # run from testdata/ so the exported IF_NAME option is "input/traffic.pc"
    (cd "$HERE" && exec "${cmd[@]}") >"$WORK/$name.log" 2>&1 &
    local sp=$!
    PIDS+=("$sp")
    # softflowd -r only advances while its control socket is poked on some
    # builds: poke until "Packets processed" is stable, then expire + shutdown.
    local prev="" cur i
    for i in $(seq 1 300); do
        kill -0 "$sp" 2>/dev/null || break
        cur=$(softflowctl -c "$ctl" statistics 2>/dev/null | grep -i 'packets processed' || true)
        if [[ -n $cur && $cur == "$prev" ]]; then
            softflowctl -c "$ctl" expire-all >/dev/null 2>&1 || true
            sleep 1
            softflowctl -c "$ctl" shutdown >/dev/null 2>&1 || true
            break
        fi
        prev=$cur
        sleep 0.3
    done
    wait "$sp" || true
    forget "$sp"
    grep -E 'Packets processed|Flows exported|Exporting|rror' "$WORK/$name.log" | sed 's/^/    softflowd: /' || true
    stop_capture "$name"
    stop "$SINK_PID"
    local ref=nfcapd
    [[ $proto == tcp ]] && ref=nfcapd-tcp
    totals "$name" "$format" "$proto" "$port" "${cmd[*]/#$WORK\//}" "$ref"
}

# ------------------------------------------------------------------- fprobe
setup_veth() {
    ip link del "$VETH_A" 2>/dev/null || true
    run ip link add "$VETH_A" type veth peer name "$VETH_B"
    # no IPv6 autoconf/DAD/MLD chatter on the replay link
    sysctl -qw "net.ipv6.conf.$VETH_A.disable_ipv6=1" "net.ipv6.conf.$VETH_B.disable_ipv6=1" || true
    run ip link set "$VETH_A" up
    run ip link set "$VETH_B" up
}

fprobe_capture() {  # NAME VERSION FORMAT
    local name=$1 ver=$2 format=$3 port
    log "$name: fprobe -n $ver (live capture on veth $VETH_B, pcap replayed at 10x)"
    port=$(freeport udp)
    start_sink udp "$port"
    start_capture "$name" udp "$port"
    local cmd=(fprobe -i "$VETH_B" -n "$ver" -s 1 -d 2 -e 120 -q 10000 -B 4096 -S 1600 -l 2:fprobe "127.0.0.1:$port")
    printf '    $ %s\n' "${cmd[*]}"
    "${cmd[@]}" >"$WORK/$name.log" 2>&1 &
    local fp=$!
    PIDS+=("$fp")
    sleep 1
    run $PY "$HERE/pcap_replay.py" "$VETH_A" "$IN" --speed 10
    # flows idle-expire after 2 s; fprobe sends a partial datagram only after
    # its emit timeout (~8 s without new flows), so wait for that
    sleep 14
    stop "$fp" TERM
    stop_capture "$name"
    stop "$SINK_PID"
    totals "$name" "$format" udp "$port" "${cmd[*]} (input/traffic.pcap replayed into the veth peer)" nfcapd
}

# ------------------------------------------------------------------ pmacctd
pmacct_capture() {  # NAME PLUGIN VERSION FORMAT
    local name=$1 plugin=$2 ver=$3 format=$4 port conf
    port=$(freeport udp)
    conf="$WORK/$name.conf"
    {
        echo "daemonize: false"
        echo "pcap_savefile: $IN"
        echo "plugins: $plugin"
        if [[ $plugin == nfprobe ]]; then
            echo "nfprobe_receiver: 127.0.0.1:$port"
            echo "nfprobe_version: $ver"
            echo "nfprobe_engine: $([[ $ver == 5 ]] && echo 1:7 || echo 7)"
            [[ $ver != 5 ]] && echo "aggregate: src_host, dst_host, src_port, dst_port, proto, tos, tcpflags, vlan, src_mac, dst_mac"
        else
            echo "sfprobe_receiver: 127.0.0.1:$port"
            echo "sfprobe_agentip: 192.0.2.1"
            echo "sfprobe_agentsubid: 7"
            echo "sampling_rate: 2"
        fi
    } >"$conf"
    log "$name: pmacctd plugin $plugin ${ver:+version $ver}"
    sed 's/^/    | /' "$conf"
    start_sink udp "$port"
    # pmacctd 1.7.7 sometimes exits 1 at end of file ("connection lost to
    # 'default_sfprobe-sfprobe' ... no more plugins active"): retry then.
    local attempt rc
    for attempt in 1 2 3; do
        start_capture "$name" udp "$port"
        rc=0
        run timeout 120 pmacctd -f "$conf" >"$WORK/$name.log" 2>&1 || rc=$?
        grep -E 'ERROR|WARN' "$WORK/$name.log" | sed 's/^/    pmacctd: /' || true
        stop_capture "$name"
        [[ $rc == 0 ]] && break
        echo "    pmacctd exited $rc (attempt $attempt)" >&2
        [[ $attempt == 3 ]] && { cat "$WORK/$name.log" >&2; exit 1; }
    done
    stop "$SINK_PID"
    local ref=nfcapd
    [[ $plugin == sfprobe ]] && ref=sfcapd
    totals "$name" "$format" udp "$port" "pmacctd -f CONF with: $(grep -v -e pcap_savefile -e daemonize "$conf" | sed 's/127.0.0.1:[0-9]*/127.0.0.1:PORT/' | paste -sd ';' | sed 's/;/; /g')" "$ref"
}

# ----------------------------------------------------------------- nfreplay
NFREPLAY_SRC=""
nfreplay_source() {
    [[ -n $NFREPLAY_SRC ]] && return 0
    log "nfreplay input: nfcapd collects captures/softflowd-v9.pcap"
    [[ -s $OUT/softflowd-v9.pcap ]] || softflowd_capture softflowd-v9 9 udp netflow_v9
    local dir="$WORK/nfreplay-src" rport
    mkdir -p "$dir"
    rport=$(freeport udp)
    nfcapd -b 127.0.0.1 -p "$rport" -w "$dir" -t 3600 >"$dir.log" 2>&1 &
    local cpid=$!
    PIDS+=("$cpid")
    sleep 1
    local sport
    sport=$($PY "$HERE/tshark_totals.py" --dst-port-of "$OUT/softflowd-v9.pcap")
    run $PY "$HERE/pcap_replay.py" udp-payloads "$OUT/softflowd-v9.pcap" "127.0.0.1:$rport" --dport "$sport"
    sleep 1
    stop "$cpid" TERM
    NFREPLAY_SRC=$(ls "$dir"/nfcapd.* | grep -v current | head -1)
    run nfdump -r "$NFREPLAY_SRC" -I | grep -E '^(Flows|Packets|Bytes):' | sed 's/^/    /'
}

nfreplay_capture() {  # NAME VERSION FORMAT
    local name=$1 ver=$2 format=$3 port
    nfreplay_source
    log "$name: nfreplay -v $ver"
    port=$(freeport udp)
    start_sink udp "$port"
    start_capture "$name" udp "$port"
    local cmd=(nfreplay -r "$NFREPLAY_SRC" -H 127.0.0.1 -p "$port" -v "$ver" -d 1000)
    printf '    $ %s\n' "${cmd[*]}"
    local rc=0
    "${cmd[@]}" >"$WORK/$name.log" 2>&1 || rc=$?
    stop_capture "$name"
    stop "$SINK_PID"
    if [[ $rc != 0 ]] || ! [[ $(tcpdump -r "$OUT/$name.pcap" 2>/dev/null | wc -l) -gt 0 ]]; then
        echo "    SKIPPED: nfreplay -v $ver failed (exit $rc):" >&2
        sed 's/^/      /' "$WORK/$name.log" >&2
        rm -f "$OUT/$name.pcap" "$OUT/$name.totals.json"
        SKIPPED+=("$name")
        return 0
    fi
    totals "$name" "$format" udp "$port" "nfreplay -r nfcapd.FILE -H 127.0.0.1 -p PORT -v $ver -d 1000 (FILE = nfcapd collection of captures/softflowd-v9.pcap)" nfcapd
}

# ------------------------------------------------------------------- main
[[ $(id -u) == 0 ]] || { echo "run as root (tcpdump on lo, veth for fprobe)" >&2; exit 1; }
need softflowd softflowd; need softflowctl softflowd; need fprobe fprobe; need pmacctd pmacct
need nfcapd nfdump; need nfdump nfdump; need nfreplay nfdump; need sfcapd nfdump-sflow
need tshark tshark; need tcpdump tcpdump; need ip iproute2; need $PY python3

ALL=(softflowd-v5 softflowd-v9 softflowd-ipfix softflowd-ipfix-tcp
     fprobe-v1 fprobe-v5 fprobe-v7
     pmacct-nfprobe-v5 pmacct-nfprobe-v9 pmacct-nfprobe-ipfix pmacct-sfprobe
     nfreplay-v9 nfreplay-ipfix)
WANT=("$@")
[[ ${#WANT[@]} -gt 0 ]] || WANT=("${ALL[@]}")
SKIPPED=()

mkdir -p "$OUT"
if [[ ! -s $IN ]]; then
    log "input: generating $IN"
    run $PY "$HERE/make_traffic.py"
fi
log "input: $(ls -l "$IN" | awk '{print $5}') bytes, $(tcpdump -r "$IN" 2>/dev/null | wc -l) packets"

for name in "${WANT[@]}"; do
    case $name in
        softflowd-v5) softflowd_capture "$name" 5 udp netflow_v5 ;;
        softflowd-v9) softflowd_capture "$name" 9 udp netflow_v9 ;;
        softflowd-ipfix) softflowd_capture "$name" 10 udp ipfix ;;
        softflowd-ipfix-tcp) softflowd_capture "$name" 10 tcp ipfix ;;
        fprobe-v1|fprobe-v5|fprobe-v7)
            [[ -e /sys/class/net/$VETH_A ]] || setup_veth
            fprobe_capture "$name" "${name#fprobe-v}" "netflow_v${name#fprobe-v}" ;;
        pmacct-nfprobe-v5) pmacct_capture "$name" nfprobe 5 netflow_v5 ;;
        pmacct-nfprobe-v9) pmacct_capture "$name" nfprobe 9 netflow_v9 ;;
        pmacct-nfprobe-ipfix) pmacct_capture "$name" nfprobe 10 ipfix ;;
        pmacct-sfprobe) pmacct_capture "$name" sfprobe "" sflow_v5 ;;
        nfreplay-v9) nfreplay_capture "$name" 9 netflow_v9 ;;
        nfreplay-ipfix) nfreplay_capture "$name" 10 ipfix ;;
        *) echo "unknown capture $name (known: ${ALL[*]})" >&2; exit 2 ;;
    esac
done

log "done: $(ls "$OUT"/*.pcap | wc -l) captures in $OUT"
[[ ${#SKIPPED[@]} -eq 0 ]] || log "skipped (see messages above): ${SKIPPED[*]}"
