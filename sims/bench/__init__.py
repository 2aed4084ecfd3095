"""Speed benchmarks: each measures side by side in one run and rewrites its section of docs/performance.md
(``make bench``). Nothing in the packages imports them."""
