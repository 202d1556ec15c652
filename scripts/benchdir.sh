# Sourced by bench.sh and ab.sh: bench_dir prints a new directory for one run.
#
# Each run's directory lands in a fresh ext4 block group: its parent is
# marked `chattr +T`, so ext4 spreads the subdirectories (Orlov). On a file
# system without a journal (this machine's), ext4 skips every inode deleted
# in the last 60-360 s when it allocates one, so the clean-up of one run
# (tens of thousands of files) would otherwise slow the devices' file
# creation in the next run by 2x. PRIVICORE_BENCH_DIR overrides the parent.
bench_dir() {
  local root=${PRIVICORE_BENCH_DIR:-/var/tmp/privicore-bench}
  mkdir -p "$root" && chattr +T "$root" 2>/dev/null
  mktemp -d -p "$root"
}
