"""Plain-text and Markdown tables of a run summary."""
from __future__ import annotations


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def accuracy_rows(s: dict) -> list[tuple[str, str, str, str]]:
    """(backend, n, accuracy, note) rows."""
    acc, lava = s["accuracy"], s["lava"]
    rows = [("float model", str(acc["float"]["n"]), _pct(acc["float"]["accuracy"]), "whole test split"),
            ("fixed point (emulator)", str(acc["emulator"]["n"]), _pct(acc["emulator"]["accuracy"]),
             "whole test split, bit-exact model of Lava")]
    if "lava" in acc:
        note = (f"subset; same samples: float {_pct(acc['lava_subset_float']['accuracy'])}, "
                f"emulator {_pct(acc['lava_subset_emulator']['accuracy'])}; traces {lava['status']}")
        rows.append(("Lava CPU simulator (fixed_pt)", str(acc["lava"]["n"]), _pct(acc["lava"]["accuracy"]), note))
    else:
        rows.append(("Lava CPU simulator (fixed_pt)", "0", "n/a", f"{lava['status']} (not verified in Lava)"))
    return rows


def accuracy_table_text(s: dict) -> str:
    rows = [("backend", "n", "accuracy", "")] + accuracy_rows(s)
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}  {r[3]}".rstrip() for r in rows]
    lines.insert(1, "-" * (sum(w) + 4))
    loss = s.get("conversion_loss_pp")
    if loss is not None:
        lines.append(f"conversion loss (float - emulator): {loss:+.2f} percentage points; "
                     f"float/emulator agree on {100 * s['agreement']['float_vs_emulator']:.2f} % of samples")
    return "\n".join(lines)


def markdown_table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
