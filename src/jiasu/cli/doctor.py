"""`jiasu doctor`: this machine's hardware and dependencies, and what can apply here."""

from __future__ import annotations

import json

import click
from rich.table import Table
from rich.text import Text

from jiasu.app.doctor import Diagnosis
from jiasu.cli.options import quiet_option
from jiasu.hardware.peak import Peak
from jiasu.ui.console import console as make_console


def _gib(value: int | None) -> str:
    return "unknown" if value is None else f"{value / 2**30:.1f} GiB"


def _yes(flag: bool) -> Text:
    return Text("yes", style="green") if flag else Text("no", style="dim")


def _machine_table(d: Diagnosis) -> Table:
    cpu, mem, dev = d.cpu, d.memory, d.devices
    table = Table(title="machine", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("CPU", f"{cpu['model']} ({cpu['machine']})")
    flags = Text()
    for name, present in cpu["flags"].items():
        flags.append(f"{name} {'✓' if present else '✗'}  ", style="green" if present else "dim")
    table.add_row("CPU flags", flags)
    if cpu["other_features"]:
        table.add_row("other features", ", ".join(cpu["other_features"]))
    table.add_row(
        "cores / threads",
        f"{cpu['logical_cpus']} logical CPUs, {cpu['physical_cores'] or '?'} physical cores, "
        f"{cpu['usable_cpus']} usable; torch uses {cpu['torch_threads']} intra-op and "
        f"{cpu['torch_interop_threads']} inter-op threads",
    )
    memory = f"{_gib(mem['total_bytes'])} total, {_gib(mem['available_bytes'])} available"
    if mem["cgroup_limit_bytes"]:
        memory += f", container limit {_gib(mem['cgroup_limit_bytes'])}"
    table.add_row("memory", memory)
    if dev["cuda"]:
        for gpu in dev["cuda"]:
            table.add_row(
                gpu["device"],
                f"{gpu['name']}, compute capability {gpu['capability']}, "
                f"{_gib(gpu['memory_bytes'])}",
            )
    else:
        table.add_row(
            "CUDA", "no CUDA device" + (" (driver present)" if dev["nvidia_driver"] else "")
        )
    table.add_row("Apple MPS", _yes(dev["mps"]))
    table.add_row("XLA / TPU", _yes(dev["xla"]))
    return table


def _packages_table(d: Diagnosis) -> Table:
    table = Table(title="software", title_justify="left")
    table.add_column("package", no_wrap=True)
    table.add_column("version")
    table.add_column("for")
    table.add_column("to do on this machine")
    for p in d.packages:
        version = Text(p.version or "missing", style="" if p.version else "yellow")
        todo = Text(p.install or "—", style="cyan" if p.install else "dim")
        if p.note:
            todo.append(f"  ({p.note})", style="dim")
        table.add_row(p.name, version, p.purpose, todo)
    return table


def _techniques_table(d: Diagnosis) -> Table:
    table = Table(title="techniques", title_justify="left", caption=f"checked for {d.probe}")
    table.add_column("technique", no_wrap=True)
    table.add_column("stage / kind / exactness", no_wrap=True)
    table.add_column("here?")
    table.add_column("why")
    for t in d.techniques:
        if t.applies is None:
            verdict = Text("per model", style="dim")
        else:
            verdict = Text("yes", style="green") if t.applies else Text("no", style="red")
        table.add_row(t.name, f"{t.stage} / {t.kind} / {t.exactness}", verdict, Text(t.reason))
    return table


def _peak_text(peak: Peak | None) -> Text:
    from jiasu.hardware.peak import describe_peak, peak_warnings

    if peak is None:
        return Text("peak: not measured yet; run `jiasu doctor --measure`", style="dim")
    bf16 = peak.matmul_bf16_flops_per_s
    text = Text(
        f"peak ({peak.threads} threads, {peak.measured_at}): matmul fp32 "
        f"{peak.matmul_fp32_flops_per_s / 1e9:,.0f} GFLOP/s, bf16 "
        f"{'—' if bf16 is None else f'{bf16 / 1e9:,.0f}'} GFLOP/s; memory copy "
        f"{peak.memory_bytes_per_s / 1e9:,.1f} GB/s; {describe_peak(peak)}"
        + (f" (best of {peak.rounds} rounds)" if peak.rounds else "")
    )
    for warning in peak_warnings(peak):
        text.append(f"\nwarning: {warning}", style="yellow")
    return text


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON on stdout.")
@click.option(
    "--measure",
    is_flag=True,
    help="Also measure peak matmul (fp32, bf16) and memory bandwidth (seconds); cached.",
)
@quiet_option
def doctor(as_json: bool, measure: bool, quiet: bool) -> None:
    """Show this machine's hardware, installed backends, and which techniques apply here.

    For each missing piece it prints the install command for this hardware. With
    --measure it also measures the machine's peak rates, which every report then uses
    to show how far each run is from the limit.
    """
    from jiasu.app.doctor import diagnose, measure_and_save_peak

    err = make_console(stderr=True, quiet=quiet)
    if measure:
        with err.status("measuring peak matmul rate and memory bandwidth…"):
            path = measure_and_save_peak()
        err.print(f"saved the measured peak to {path}")
    diagnosis = diagnose()
    if as_json:
        click.echo(json.dumps(diagnosis.to_dict(), indent=2))
        return
    console = make_console()
    console.print(_machine_table(diagnosis))
    console.print(_packages_table(diagnosis))
    console.print(_techniques_table(diagnosis))
    console.print(_peak_text(diagnosis.peak))
