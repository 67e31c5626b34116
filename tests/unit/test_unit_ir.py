"""The IR traversal protocol (srcgrad/ir.py): blocks, walk, map_body, copies, dispatch and the printed facts."""

import pytest
from irsamples import every_statement, lowered, straight

from srcgrad import ir


def test_walk_visits_every_statement_compound_before_its_blocks():
    fn = lowered(every_statement)
    kinds = [type(s).__name__ for s in ir.walk(fn.body)]
    assert {"For", "If", "Break", "While", "With", "Try", "Return", "Op"} <= set(kinds)
    seen = list(ir.walk(fn.body))
    for stmt in seen:  # every nested statement comes after the statement holding it
        for block in stmt.blocks():
            for inner in block:
                assert seen.index(inner) > seen.index(stmt)
    assert [op for op in ir.walk_ops(fn.body)] == [s for s in seen if isinstance(s, ir.Op)]


@pytest.mark.parametrize("kind", [ir.If, ir.For, ir.While, ir.With, ir.Try])
def test_with_blocks_copies_and_keeps_the_header(kind):
    fn = lowered(every_statement)
    stmt = next(s for s in ir.walk(fn.body) if isinstance(s, kind))
    blocks = stmt.blocks()
    emptied = stmt.with_blocks([[] for _ in blocks])
    assert emptied is not stmt and all(b == [] for b in emptied.blocks())
    assert stmt.blocks() == blocks  # the original is left as it was
    assert emptied.header_reads() == stmt.header_reads() and emptied.line == stmt.line


def test_header_reads_of_a_try_name_its_path_and_handler_types():
    fn = lowered(every_statement)
    stmt = next(s for s in ir.walk(fn.body) if isinstance(s, ir.Try))
    reads = stmt.header_reads()
    assert reads[0] == ir.Var(stmt.path)
    assert all(isinstance(r, ir.Var) for r in reads)  # the exception tuple is a value the lowering computes


def test_map_body_rewrites_without_touching_the_input():
    fn = lowered(every_statement)
    before = str(fn)
    body = ir.map_body(fn.body, lambda s: [] if isinstance(s, ir.Op) else [s])
    assert not list(ir.walk_ops(body))
    assert str(fn) == before


def test_copy_body_gives_ops_of_its_own():
    fn = lowered(straight)
    copy = ir.copy_body(fn.body)
    originals = list(ir.walk_ops(fn.body))
    copies = list(ir.walk_ops(copy))
    assert len(originals) == len(copies) and not any(a is b for a, b in zip(originals, copies))
    copies[0].guard_unshared = ("marker",)
    assert originals[0].guard_unshared == ()


def test_dispatch_by_statement_class():
    class Counter(ir.Visitor):
        def __init__(self):
            self.seen = []

        def visit_If(self, stmt):
            self.seen.append("if")

        def visit_Op(self, stmt):
            self.seen.append("op")

    fn = lowered(every_statement)
    counter = Counter()
    for stmt in ir.walk(fn.body):
        counter.visit(stmt)
    assert counter.seen.count("if") == sum(isinstance(s, ir.If) for s in ir.walk(fn.body))
    assert ir.dispatch(counter, "nothing_", fn.body[0], default="none") == "none"


def test_format_function_prints_notes_on_bound_names():
    fn = lowered(straight)
    text = ir.format_function(fn, lambda name: f"{name}:note")
    assert "x:note  y:note" in text.splitlines()[0]
    assert any(line.strip().startswith("a = ") and "a:note" in line for line in text.splitlines())
    assert str(fn) == ir.format_function(fn)  # no notes: the plain grammar
