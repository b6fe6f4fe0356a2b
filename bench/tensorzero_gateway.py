#!/usr/bin/env python3
"""Serves TensorZero's gateway on loopback for bench/run.sh's peers mode, until SIGTERM or SIGINT.

The `tensorzero` PyPI wheel embeds the real Rust gateway: `_start_http_gateway` starts its HTTP server on a
free loopback port inside this process, on the wheel's own threads, and returns once it is listening. This
script writes the gateway's origin (`http://127.0.0.1:PORT`) to --url-file (and stdout), so the caller knows
both the address and that the gateway is ready; its OpenAI endpoint is ORIGIN/openai/v1/chat/completions.

    python tensorzero_gateway.py --config tensorzero.toml --url-file url.txt
"""
import argparse
import os
import signal
import sys
import urllib.parse


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="tensorzero.toml")
    parser.add_argument("--url-file", required=True, help="written with the gateway's origin once it listens")
    args = parser.parse_args()

    # Read when the gateway starts: no call home from a benchmark run.
    os.environ["TENSORZERO_DISABLE_PSEUDONYMOUS_USAGE_ANALYTICS"] = "1"

    # Blocked before the gateway starts its threads, which inherit the mask: the signals then stay pending
    # for sigwait below on this thread, whichever thread the kernel would have picked.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)

    import tensorzero

    gateway = tensorzero._start_http_gateway(
        config_file=args.config,
        clickhouse_url=None,
        postgres_url=None,
        valkey_url=None,
        async_setup=False,
    )
    # The wheel's base_url already ends in its OpenAI prefix (`/openai/v1` in 2026.6); hand over only the
    # origin, so the caller's path does not depend on what a given version puts there.
    base = urllib.parse.urlsplit(gateway.base_url)
    origin = f"{base.scheme}://{base.netloc}"
    temporary = args.url_file + ".tmp"
    with open(temporary, "w") as file:
        file.write(origin + "\n")
    os.replace(temporary, args.url_file)  # the caller polls for the file: it must never see half of it
    print(f"TensorZero {tensorzero.__version__} gateway listening on {origin} (base_url {gateway.base_url})", flush=True)

    # Idle until told to stop: no polling, so the process's CPU time is the gateway's alone.
    signal.sigwait(stop_signals)
    gateway.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
