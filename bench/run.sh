#!/usr/bin/env bash
# Side-by-side benchmark of snapstack against restic, borg and nbdkit
# (issues 3 and 6). Not part of CI: the full run takes 20-30 minutes.
#
#   bench/run.sh                      full run, 4 GiB images; updates docs/benchmarks.md
#   bench/run.sh --size 512MiB        quick run; report in /tmp/bench/benchmarks-512MiB.md,
#                                     scratch and raw samples in /tmp/bench/run-512MiB
#   bench/run.sh [--size S] FLAGS...  FLAGS go to snapbench (e.g. -runs 5, -phases workload,
#                                     -tools snapstack,restic, -inproc -cpuprofile /tmp/cpu.out)
#
# Installs restic and borgbackup from Debian when missing, builds the
# workload generator of ../shared/bench, generates the seeded images once
# (base, day1 = base + a 1% day of changes, vm2 = a 95%-identical second
# VM) and runs bench/cmd/snapbench. Environment: SNAPBENCH_SHARED (the
# shared bench directory), SNAPBENCH_ROOT (scratch root, /tmp/bench).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
size=4GiB
if [[ "${1:-}" == "--size" ]]; then
	size=$2
	shift 2
fi
shared=${SNAPBENCH_SHARED:-$repo/../shared/bench}
root=${SNAPBENCH_ROOT:-/tmp/bench}
if [[ $size == 4GiB ]]; then
	images=$root/img work=$root/run
	doc=()
else
	images=$root/small-$size work=$root/run-$size
	doc=(-doc "$root/benchmarks-$size.md")
fi

need=()
command -v restic >/dev/null || need+=(restic)
command -v borg >/dev/null || need+=(borgbackup)
command -v nbdkit >/dev/null || need+=(nbdkit)
command -v fio >/dev/null || need+=(fio)
command -v nbdcopy >/dev/null || need+=(libnbd-bin)
if ((${#need[@]})); then
	echo "installing ${need[*]}" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p "$root/bin" "$images"
(cd "$shared" && go build -o "$root/bin/diskgen" ./cmd/diskgen)
go build -o "$root/bin/snapstack" ./cmd/snapstack
go build -o "$root/bin/snapbench" ./bench/cmd/snapbench

# The images are a pure function of the seeds: generate them once.
dg=$root/bin/diskgen
if [[ ! -e $images/gen.done ]]; then
	echo "generating $size images in $images" >&2
	(
		cd "$images"
		rm -f base.img day1.img day1.log vm2.img
		"$dg" gen -o base.img -size "$size" -seed 1 >gen.json
		"$dg" clone -i base.img -o day1.img -frac 0 >clone.json
		"$dg" day -i day1.img -frac 0.01 -seed 2 -log day1.log >day.json
		touch gen.done
	)
fi
if [[ ! -e $images/vm2.img ]]; then
	(cd "$images" && "$dg" clone -i base.img -o vm2.img -frac 0.05 -seed 3 >vm2.json)
fi

if [[ $size == 4GiB ]]; then sz=""; else sz="--size $size "; fi
export SNAPBENCH_COMMAND="bench/run.sh $sz$*"
echo "+ snapbench -images $images ${doc[*]} $*" >&2
exec "$root/bin/snapbench" -repo "$repo" -bin "$root/bin/snapstack" -images "$images" -work "$work" "${doc[@]}" "$@"
