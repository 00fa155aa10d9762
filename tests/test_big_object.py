"""An object with 1,000 programs and 1,000 maps (``bench/gen_big_object.py``): our reader and
``bpfimg inspect`` handle it, and agree with libbpf on every program and map."""

from __future__ import annotations

import json

from libbpf_compare import assert_user_maps_match, program_mismatches
from libbpf_oracle import open_object

from bpfimg.elf import read_object
from bpfimg.labels import MAPS_LABEL, PROGRAMS_LABEL

PROGRAMS = MAPS = 1000


def test_big_object_counts_and_names_equal_libbpf(big_object, gen_big_object) -> None:
    ours, theirs = read_object(big_object), open_object(big_object)
    assert len(ours.programs) == len(theirs.programs) == PROGRAMS
    assert len(ours.maps) == len(theirs.maps) == MAPS
    assert sorted(p.name for p in ours.programs) == sorted(p.name for p in theirs.programs)
    assert sorted(m.name for m in ours.maps) == sorted(m.name for m in theirs.maps)
    assert program_mismatches(ours, theirs) == []
    assert_user_maps_match(ours, theirs)


def test_big_object_holds_what_the_generator_wrote(big_object, gen_big_object) -> None:
    obj = read_object(big_object)
    assert {(p.name, p.section) for p in obj.programs} == {
        (gen_big_object.program_name(i), gen_big_object.program_section(i)) for i in range(PROGRAMS)
    }
    assert {(m.name, m.max_entries) for m in obj.maps} == {
        (gen_big_object.map_name(i), gen_big_object.map_max_entries(i)) for i in range(MAPS)
    }
    assert sum(p.section == "xdp" for p in obj.programs) == PROGRAMS // 2


def test_inspect_json_on_big_object_lists_everything(big_object, run_cli) -> None:
    rc, out, err = run_cli("inspect", "-o", "json", big_object)
    assert (rc, err) == (0, "")
    report = json.loads(out)
    assert len(report["programs"]) == PROGRAMS
    assert len(report["maps"]) == MAPS
    assert len(json.loads(report["labels"][PROGRAMS_LABEL])) == PROGRAMS
    assert len(json.loads(report["labels"][MAPS_LABEL])) == MAPS
