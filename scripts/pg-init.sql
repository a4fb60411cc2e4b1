-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d),
-- as POSTGRES_USER (stampede, superuser in the container) connected to POSTGRES_DB (stampede).
-- scripts/services.sh does the same for a local Debian cluster.
CREATE DATABASE stampede_test OWNER stampede;
