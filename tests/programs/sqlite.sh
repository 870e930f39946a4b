#!/bin/sh
# sqlite.sh - sqlite3 with a million rows (recursive CTE insert, indexes,
# aggregates, a self join, updates, deletes, integrity check) under glibc and
# under alloy; query results must be identical.
. "$(dirname "$0")/lib.sh"
skip_unless sqlite3
cat >"$T/q.sql" <<'SQL'
PRAGMA cache_size = -200000;
PRAGMA journal_mode = OFF;
CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL);
WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < 1000000)
INSERT INTO t SELECT x, (x * 7919) % 100003, printf('name-%d-%s', x % 9973, hex(x * 31)),
                     (x % 1000) / 7.0 FROM r;
CREATE INDEX t_a ON t(a);
CREATE INDEX t_b ON t(b);
SELECT count(*), sum(a), min(b), max(b), round(avg(c), 6) FROM t;
SELECT a % 10, count(*), sum(id) FROM t GROUP BY a % 10 ORDER BY 1;
SELECT substr(b, 1, 8), count(*) FROM t GROUP BY substr(b, 1, 8) ORDER BY 2 DESC, 1 LIMIT 10;
SELECT count(DISTINCT b), count(DISTINCT a) FROM t;
SELECT t1.id, t2.id, t2.b FROM t t1 JOIN t t2 ON t1.a = t2.id WHERE t1.id % 100000 = 0 ORDER BY 1;
SELECT group_concat(id) FROM (SELECT id FROM t WHERE a BETWEEN 500 AND 510 ORDER BY id LIMIT 50);
UPDATE t SET b = upper(b) || b WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT count(*), sum(length(b)), total(c) FROM t;
SELECT b FROM t ORDER BY b DESC LIMIT 5;
PRAGMA integrity_check;
SQL
ref sqlite sqlite3 "$T/ref.db" ".read $T/q.sql"
on_alloy sqlite sqlite3 "$T/alloy.db" ".read $T/q.sql"
same sqlite
rm -f "$T/ref.db" "$T/alloy.db"
finish
