#!/usr/bin/env bash
# The published service measurements (results/service/load.md), after
#   python -m bench run --config results/service/experiment.toml
# Serves the run on 127.0.0.1 (one process, 1 torch thread) and load-tests it from this
# machine, client and server sharing its cores: EASE and Mult-VAE at 1, 8 and 32 clients for
# known users and 20-rating fold-ins, every other family that folds in at 32 clients, then a
# 10-minute soak of EASE and Mult-VAE at 32 clients with the server's memory sampled.
set -euo pipefail
cd "$(dirname "$0")/../.."
port=${PORT:-8765}
if curl -s "http://127.0.0.1:$port/" > /dev/null; then
    echo "port $port is taken: PORT=... $0" >&2; exit 1
fi
python -m bench serve results/service/run --port "$port" > results/service/serve.log 2>&1 &
server=$!
trap 'kill $server' EXIT
for _ in $(seq 120); do
    kill -0 $server  # gone: it could not start (serve.log says why)
    curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break
    sleep 1
done
url="http://127.0.0.1:$port"
python -m bench load-test "$url" --models ease mult-vae --requests 3000 --out results/service/load-main.json
python -m bench load-test "$url" --kinds fold-in --clients 32 --requests 2000 \
    --models autorec-u dlae ease-higher edlae ials inf-ae itemknn mult-dae popularity puresvd \
             rp3beta sae-200-100-200 slim svd-ae --out results/service/load-fold-in.json
python -m bench load-test "$url" --kinds known --clients 32 --requests 2000 --models mf \
    --out results/service/load-known-mf.json
python -m bench load-test "$url" --models ease mult-vae --clients 32 --requests 1 \
    --soak-s "${SOAK_S:-600}" --out results/service/load-soak.json
python -m aebench.bench.service.load results/service docs/service.md
