# Reads bench/run.sh raw records ("round tool test size value...", '#' lines
# skipped) and prints one line per (tool, test, size): the median of each
# value column over the rounds ("n/a" values are left out), then the rounds.
!/^#/ && NF >= 5 {
  key = $2 " " $3 " " $4
  if (!(key in rounds)) order[++nkeys] = key
  rounds[key]++
  if (NF - 4 > ncols[key]) ncols[key] = NF - 4
  for (i = 5; i <= NF; i++)
    if ($i != "n/a") vals[key, i - 4, ++n[key, i - 4]] = $i + 0
}
function median(key, col,    m, i, j, t, a) {
  m = n[key, col]
  if (m == 0) return "n/a"
  for (i = 1; i <= m; i++) a[i] = vals[key, col, i]
  for (i = 2; i <= m; i++)  # insertion sort: three rounds, a handful of values
    for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
  return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
END {
  for (k = 1; k <= nkeys; k++) {
    line = order[k]
    for (c = 1; c <= ncols[order[k]]; c++) line = line " " median(order[k], c)
    print line " rounds=" rounds[order[k]]
  }
}
