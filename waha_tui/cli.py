"""The `waha-tui` command line (Typer)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from waha_tui.errors import UserError

app = typer.Typer(
    name="waha-tui",
    help="WhatsApp campaigns through a self-hosted WAHA server, from the terminal.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    db: Annotated[
        str | None, typer.Option("--db", help="SQLite file (env WAHA_TUI_DB).", show_default=False)
    ] = None,
    waha_url: Annotated[
        str | None, typer.Option("--waha-url", help="WAHA base URL (env WAHA_URL).")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", help="WAHA API key (env WAHA_API_KEY).", show_default=False),
    ] = None,
) -> None:
    """With no command: open the dashboard."""
    from waha_tui.config import Settings

    ctx.obj = Settings.resolve(db, waha_url, api_key)
    if ctx.invoked_subcommand is None:
        fail("the dashboard is not built yet: try `waha-tui simulator`")


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def simulator(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="Require this X-Api-Key.", show_default=False)
    ] = None,
    no_message_ids: Annotated[
        bool, typer.Option("--no-message-ids", help="Act as WAHA older than 2026.4.3.")
    ] = False,
) -> None:
    """Run the WAHA simulator: WAHA's API on a loopback port, with faults under /_sim/."""
    from waha_tui.simulator import SimState, Simulator
    from waha_tui.simulator.server import serve_forever

    sim = Simulator(SimState(api_key=api_key, message_ids=not no_message_ids))
    key_note = " (API key required)" if api_key else ""
    typer.echo(f"WAHA simulator listening on http://{host}:{port}{key_note}", err=False)
    sys.stdout.flush()
    serve_forever(sim, host, port)


def main() -> None:
    try:
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
