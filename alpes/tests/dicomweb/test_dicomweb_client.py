#!/usr/bin/env python3
"""Drives a running Alpes with the real Python DICOMweb client (`dicomweb-client`).

Run by `alpes/tests/dicomweb_client.rs`, which spawns the platform and passes
everything this script needs:

    python test_dicomweb_client.py --base http://127.0.0.1:PORT \
        --provider-token JWT --consumer-token JWT --provider-id hospital-1 \
        --price 250 --fixture anonymizer/tests/fixtures/dicom/CT_small.dcm

Every option can also come from the environment (ALPES_BASE,
ALPES_PROVIDER_TOKEN, ALPES_CONSUMER_TOKEN, ALPES_PROVIDER_ID, ALPES_PRICE,
ALPES_FIXTURE).

What it checks, in order:

1. STOW-RS: the provider stores the fixture with `store_instances`; a consumer
   may not store; a caller without a token may not search.
2. QIDO-RS: the consumer polls `search_for_studies` until the anonymized study
   shows up, then searches series and instances at every level, by the
   pseudonymous PatientID, by StudyDate range, with limit/offset, and checks
   that the original PatientID and UIDs find nothing.
3. WADO-RS: `retrieve_instance` and `retrieve_instance_metadata` (plus series
   and study metadata) give the anonymized instance: remapped UIDs, pseudonyms
   in place of PatientName/PatientID, and none of the fixture's PHI anywhere in
   the dataset (sequences included) or in the raw response bytes.
4. What a web viewer asks for: `retrieve_instance_frames` (frame 1 is the
   instance's own pixels), `retrieve_instance_frames_rendered` and
   `retrieve_instance_rendered` as JPEG and PNG (decoded by Pillow, checked for
   size, a viewport honoured), the thumbnail (at most 128 a side), and
   `retrieve_bulkdata` through the metadata's Pixel Data `BulkDataURI`.
5. Billing: the provider's balance goes up by exactly the price after the
   first retrieval, and not again when the consumer retrieves the same
   instance again (instance, series and study level, frames, rendered and
   bulk data) within the repeat window.
6. Paging: 105 more studies stored; every one is found once in pages of 50,
   and the default page (100) says in a `Warning` where the next starts.

Exits 1 with a FAILED line on the first failed check, 0 with a summary otherwise.
"""

import argparse
import io
import json
import os
import sys
import time
import traceback

try:
    import dicomweb_client
    import pydicom
    import requests
    from PIL import Image
    from dicomweb_client.api import DICOMwebClient
    from pydicom.dataset import Dataset
    from pydicom.multival import MultiValue
    from pydicom.sequence import Sequence
except ImportError as e:
    print(
        f"FAILED: {e}: {sys.executable} lacks dicomweb-client; "
        f"run `{sys.executable} -m pip install 'dicomweb-client==0.61.*'`",
        file=sys.stderr,
    )
    sys.exit(2)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'

# Attributes whose values the PS3.15 basic profile removes or replaces (X, Z,
# D or a combination): none of their original values may survive.
PHI_KEYWORDS = [
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "MedicalRecordLocator",
    "MilitaryRank",
    "BranchOfService",
    "EthnicGroup",
    "Occupation",
    "AdditionalPatientHistory",
    "PatientComments",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "ReferringPhysicianName",
    "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers",
    "PhysiciansOfRecord",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "RequestingPhysician",
    "StationName",
    "AccessionNumber",
    "StudyID",
    "DeviceSerialNumber",
    "RequestAttributesSequence",
]

# UIDs the basic profile remaps ("U"): the originals may not survive.
UID_KEYWORDS = [
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
    "InstanceCreatorUID",
]


class CheckFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


START = time.monotonic()


def log(msg):
    print(f"[dicomweb-client +{time.monotonic() - START:5.1f}s] {msg}", flush=True)


def env_default(name, fallback=None):
    return os.environ.get(name, fallback)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", default=env_default("ALPES_BASE"))
    p.add_argument("--provider-token", default=env_default("ALPES_PROVIDER_TOKEN"))
    p.add_argument("--consumer-token", default=env_default("ALPES_CONSUMER_TOKEN"))
    p.add_argument("--provider-id", default=env_default("ALPES_PROVIDER_ID"))
    p.add_argument("--price", type=int, default=env_default("ALPES_PRICE"))
    p.add_argument("--fixture", default=env_default("ALPES_FIXTURE"))
    p.add_argument("--poll-secs", type=float, default=float(env_default("ALPES_POLL_SECS", "60")))
    p.add_argument(
        "--settle-secs",
        type=float,
        default=float(env_default("ALPES_SETTLE_SECS", "5")),
        help="how long the balance must stay put after a repeat retrieval",
    )
    args = p.parse_args()
    missing = [
        n
        for n in ("base", "provider_token", "consumer_token", "provider_id", "price", "fixture")
        if getattr(args, n) in (None, "")
    ]
    if missing:
        p.error("missing: " + ", ".join("--" + m.replace("_", "-") for m in missing))
    args.base = args.base.rstrip("/")
    args.price = int(args.price)
    return args


# ---------------------------------------------------------------- helpers


def strings_of(value):
    """Every string in an element value (multi-valued and PN included)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        out = []
        for v in value:
            out.extend(strings_of(v))
        return out
    if isinstance(value, (bytes, bytearray)):
        return []
    s = str(value)
    return [s] if s else []


def walk(ds, path=""):
    """(path, element) for every element of `ds`, depth first, sequences included."""
    for elem in ds:
        here = f"{path}{elem.tag}"
        if elem.keyword:
            here += f" {elem.keyword}"
        yield here, elem
        if elem.VR == "SQ" and isinstance(elem.value, Sequence):
            for i, item in enumerate(elem.value):
                yield from walk(item, f"{here}[{i}] > ")


def original_phi(ds):
    """The fixture's PHI values worth looking for, as {value: where}, and its UIDs."""
    phi = {}
    for where, elem in walk(ds):
        if elem.keyword in PHI_KEYWORDS and elem.VR != "SQ":
            for s in strings_of(elem.value):
                s = s.strip().strip("\x00").strip()
                # Too short a value would match by chance (e.g. inside pixel data).
                if len(s) >= 4:
                    phi.setdefault(s, where)
    uids = {}
    for kw in UID_KEYWORDS:
        v = ds.get(kw)
        if v:
            uids[str(v)] = kw
    return phi, uids


def assert_no_phi_in_dataset(ds, phi, uids, what):
    for where, elem in walk(ds):
        if elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN") or elem.tag == 0x7FE00010:
            continue
        for s in strings_of(elem.value):
            for bad, src in list(phi.items()) + list(uids.items()):
                check(
                    bad not in s,
                    f"{what}: the original {src} value {bad!r} survived in {where} = {s!r}",
                )


def assert_no_phi_in_bytes(raw, phi, uids, what):
    for bad, src in list(phi.items()) + list(uids.items()):
        candidates = {bad, bad.replace("^", " ")}
        for c in candidates:
            idx = raw.find(c.encode("latin-1", "replace"))
            check(
                idx < 0,
                f"{what}: the original {src} value {c!r} is in the response bytes at offset {idx}: "
                f"{raw[max(0, idx - 40):idx + len(c) + 40]!r}",
            )


def tag_value(obj, tag):
    """The first value of `tag` (8 hex digits) in a DICOM JSON object, or None."""
    el = obj.get(tag)
    if not el:
        return None
    vals = el.get("Value")
    if not vals:
        return None
    v = vals[0]
    if isinstance(v, dict) and "Alphabetic" in v:
        return v["Alphabetic"]
    return v


def all_values(obj, tag):
    el = obj.get(tag) or {}
    return el.get("Value") or []


def from_json(obj, what):
    try:
        return Dataset.from_json(obj)
    except Exception as e:  # noqa: BLE001 - any parse failure is a server bug
        raise CheckFailed(f"{what}: pydicom cannot parse the DICOM JSON ({e}): {json.dumps(obj)[:2000]}")


def http_error_status(fn):
    """Run `fn`; the HTTP status of the requests.HTTPError it raised, or None if it succeeded."""
    try:
        fn()
    except requests.exceptions.HTTPError as e:
        return e.response.status_code if e.response is not None else -1
    return None


def poll(what, fn, secs, interval=0.25):
    """Call `fn` until it returns something truthy or `secs` pass."""
    deadline = time.monotonic() + secs
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise CheckFailed(f"timed out after {secs:.0f} s waiting for {what}; last answer: {last!r}")
        time.sleep(interval)


# ---------------------------------------------------------------- the test


def run(args):
    summary = []
    original = pydicom.dcmread(args.fixture)
    orig_name = str(original.PatientName)
    orig_id = str(original.PatientID)
    orig_study = str(original.StudyInstanceUID)
    orig_series = str(original.SeriesInstanceUID)
    orig_sop = str(original.SOPInstanceUID)
    phi, uids = original_phi(original)
    check(orig_name and orig_id, f"the fixture {args.fixture} has no PatientName/PatientID to anonymize")
    check(str(original.Modality) == "CT", f"the fixture is {original.Modality}, not CT")
    log(f"dicomweb-client {dicomweb_client.__version__}, pydicom {pydicom.__version__}, server {args.base}")
    log(f"fixture {args.fixture}: PatientName={orig_name!r} PatientID={orig_id!r} SOP={orig_sop}")
    log(f"PHI to look for: {sorted(phi)}")

    provider = DICOMwebClient(url=args.base, headers={"Authorization": f"Bearer {args.provider_token}"})
    consumer = DICOMwebClient(url=args.base, headers={"Authorization": f"Bearer {args.consumer_token}"})
    anonymous = DICOMwebClient(url=args.base)
    money = requests.Session()
    money.headers["Authorization"] = f"Bearer {args.provider_token}"

    def balance():
        url = f"{args.base}/monetizacion/saldo/{args.provider_id}"
        r = money.get(url, timeout=30)
        check(r.status_code == 200, f"GET {url}: {r.status_code} {r.text[:500]}")
        body = r.json()
        check("saldo_pendiente" in body, f"GET {url}: no saldo_pendiente in {body}")
        return body

    # -- access control ------------------------------------------------------
    status = http_error_status(lambda: anonymous.search_for_studies())
    check(status == 401, f"QIDO without a token: expected HTTP 401, got {status}")
    status = http_error_status(lambda: consumer.store_instances([pydicom.dcmread(args.fixture)]))
    check(status in (401, 403), f"STOW with a consumer token: expected HTTP 403, got {status}")
    summary.append("no token -> 401 on QIDO; consumer -> 403 on STOW")

    before = balance()
    log(f"provider balance before: {before}")

    # -- STOW-RS ---------------------------------------------------------------
    stored = provider.store_instances([pydicom.dcmread(args.fixture)])
    check(isinstance(stored, Dataset), f"STOW: expected a dataset back, got {stored!r}")
    check("FailedSOPSequence" not in stored or len(stored.FailedSOPSequence) == 0, f"STOW: failures reported:\n{stored}")
    refs = stored.get("ReferencedSOPSequence")
    check(refs is not None and len(refs) == 1, f"STOW: expected one ReferencedSOPSequence item:\n{stored}")
    check(
        str(refs[0].get("ReferencedSOPClassUID", "")) == CT_IMAGE_STORAGE,
        f"STOW: ReferencedSOPClassUID is not CT Image Storage:\n{stored}",
    )
    log(f"STOW stored: ReferencedSOPInstanceUID={refs[0].get('ReferencedSOPInstanceUID')}")
    summary.append("STOW-RS store_instances: 1 instance referenced")

    # -- QIDO-RS ---------------------------------------------------------------
    studies = poll(
        "the anonymized study in search_for_studies(ModalitiesInStudy=CT)",
        lambda: consumer.search_for_studies(search_filters={"ModalitiesInStudy": "CT"}),
        args.poll_secs,
    )
    check(len(studies) == 1, f"QIDO studies?ModalitiesInStudy=CT: expected 1 study, got {len(studies)}: {studies}")
    st = studies[0]
    from_json(st, "QIDO /studies result")
    study = tag_value(st, "0020000D")
    pseud_id = tag_value(st, "00100020")
    pseud_name = tag_value(st, "00100010")
    log(f"QIDO study: {json.dumps(st)}")
    check(study, f"QIDO /studies: no StudyInstanceUID (0020000D) in {st}")
    check(study != orig_study, f"QIDO /studies: StudyInstanceUID {study} is the original one, not remapped")
    check("CT" in all_values(st, "00080061"), f"QIDO /studies: ModalitiesInStudy (00080061) lacks CT: {st.get('00080061')}")
    check(pseud_id, f"QIDO /studies: no PatientID (00100020) in {st}")
    check(pseud_id != orig_id, f"QIDO /studies: PatientID is the original {orig_id!r}")
    check(pseud_name is None or str(pseud_name) != orig_name, f"QIDO /studies: PatientName is the original {orig_name!r}")
    for attr in ("00201206", "00201208"):  # NumberOfStudyRelatedSeries / Instances
        if attr in st:
            check(tag_value(st, attr) == 1, f"QIDO /studies: {attr} should be 1: {st[attr]}")
    check(
        consumer.search_for_studies(search_filters={"ModalitiesInStudy": "MR"}) == [],
        "QIDO studies?ModalitiesInStudy=MR: expected nothing",
    )

    by_pid = consumer.search_for_studies(search_filters={"PatientID": pseud_id})
    check(
        [tag_value(s, "0020000D") for s in by_pid] == [study],
        f"QIDO studies?PatientID={pseud_id} (the pseudonym): expected [{study}], got {by_pid}",
    )
    by_orig_pid = consumer.search_for_studies(search_filters={"PatientID": orig_id})
    check(by_orig_pid == [], f"QIDO studies?PatientID={orig_id} (the ORIGINAL id) found something: {by_orig_pid}")
    by_uid = consumer.search_for_studies(search_filters={"StudyInstanceUID": study})
    check([tag_value(s, "0020000D") for s in by_uid] == [study], f"QIDO studies?StudyInstanceUID={study}: got {by_uid}")
    by_orig_uid = consumer.search_for_studies(search_filters={"StudyInstanceUID": orig_study})
    check(by_orig_uid == [], f"QIDO studies?StudyInstanceUID=<original> found something: {by_orig_uid}")
    study_date = tag_value(st, "00080020")
    if study_date:
        by_date = consumer.search_for_studies(search_filters={"StudyDate": f"{study_date}-{study_date}"})
        check(
            [tag_value(s, "0020000D") for s in by_date] == [study],
            f"QIDO studies?StudyDate={study_date}-{study_date}: expected [{study}], got {by_date}",
        )
        by_range = consumer.search_for_studies(search_filters={"StudyDate": "19000101-19000102"})
        check(by_range == [], f"QIDO studies?StudyDate=19000101-19000102: expected nothing, got {by_range}")
        summary.append(f"QIDO StudyDate range {study_date}")
    else:
        log("QIDO /studies answered no StudyDate; skipping the date range search")
    paged = consumer.search_for_studies(limit=1, offset=0)
    check(len(paged) == 1, f"QIDO studies?limit=1&offset=0: expected 1, got {paged}")
    paged = consumer.search_for_studies(limit=1, offset=1)
    check(paged == [], f"QIDO studies?limit=1&offset=1: expected nothing, got {paged}")

    series_list = consumer.search_for_series(study_instance_uid=study)
    check(len(series_list) == 1, f"QIDO /studies/{study}/series: expected 1 series, got {series_list}")
    from_json(series_list[0], "QIDO /studies/{study}/series result")
    series = tag_value(series_list[0], "0020000E")
    check(series, f"QIDO series: no SeriesInstanceUID (0020000E) in {series_list[0]}")
    check(series != orig_series, f"QIDO series: SeriesInstanceUID {series} is the original one")
    check(tag_value(series_list[0], "00080060") == "CT", f"QIDO series: Modality is not CT: {series_list[0]}")
    all_series = consumer.search_for_series(search_filters={"Modality": "CT"})
    check(
        [tag_value(s, "0020000E") for s in all_series] == [series],
        f"QIDO /series?Modality=CT: expected [{series}], got {all_series}",
    )
    check(consumer.search_for_series(search_filters={"Modality": "MR"}) == [], "QIDO /series?Modality=MR: expected nothing")
    by_series_uid = consumer.search_for_series(search_filters={"SeriesInstanceUID": series})
    check(
        [tag_value(s, "0020000E") for s in by_series_uid] == [series],
        f"QIDO /series?SeriesInstanceUID={series}: got {by_series_uid}",
    )

    instances = consumer.search_for_instances(study_instance_uid=study, series_instance_uid=series)
    check(len(instances) == 1, f"QIDO /studies/{study}/series/{series}/instances: expected 1, got {instances}")
    inst = instances[0]
    from_json(inst, "QIDO instances result")
    sop = tag_value(inst, "00080018")
    check(sop, f"QIDO instances: no SOPInstanceUID (00080018) in {inst}")
    check(sop != orig_sop, f"QIDO instances: SOPInstanceUID {sop} is the original one")
    check(tag_value(inst, "00080016") == CT_IMAGE_STORAGE, f"QIDO instances: SOPClassUID is not CT Image Storage: {inst}")
    for name, found in (
        (f"/studies/{study}/instances", consumer.search_for_instances(study_instance_uid=study)),
        ("/instances", consumer.search_for_instances()),
        (f"/instances?SOPInstanceUID={sop}", consumer.search_for_instances(search_filters={"SOPInstanceUID": sop})),
    ):
        check([tag_value(i, "00080018") for i in found] == [sop], f"QIDO {name}: expected [{sop}], got {found}")
    by_orig_sop = consumer.search_for_instances(search_filters={"SOPInstanceUID": orig_sop})
    check(by_orig_sop == [], f"QIDO /instances?SOPInstanceUID=<original> found something: {by_orig_sop}")
    for name, obj in (("studies", st), ("series", series_list[0]), ("instances", inst)):
        assert_no_phi_in_dataset(from_json(obj, name), phi, uids, f"QIDO {name} result")
    log(f"QIDO series: {json.dumps(series_list[0])}")
    log(f"QIDO instance: {json.dumps(inst)}")

    # RetrieveURL (0008,1190) comes from the Host header. dicomweb-client sends
    # `Host: <host>` without the port (its own quirk), so check it with plain
    # requests, which sends `Host: <host>:<port>`.
    plain = requests.Session()
    plain.headers.update({"Authorization": f"Bearer {args.consumer_token}", "Accept": "application/dicom+json"})
    for path, params, tag, want in (
        ("/studies", {"StudyInstanceUID": study}, "0020000D", f"{args.base}/studies/{study}"),
        (f"/studies/{study}/series", {}, "0020000E", f"{args.base}/studies/{study}/series/{series}"),
        (
            f"/studies/{study}/series/{series}/instances",
            {},
            "00080018",
            f"{args.base}/studies/{study}/series/{series}/instances/{sop}",
        ),
    ):
        r = plain.get(args.base + path, params=params, timeout=30)
        check(r.status_code == 200, f"GET {path} {params}: {r.status_code} {r.text[:500]}")
        check(
            r.headers.get("Content-Type", "").startswith("application/dicom+json"),
            f"GET {path}: Content-Type {r.headers.get('Content-Type')}",
        )
        got = r.json()
        check(isinstance(got, list) and len(got) == 1, f"GET {path} {params}: expected a JSON array of 1, got {got}")
        url = tag_value(got[0], "00081190")
        check(url == want, f"GET {path} {params}: RetrieveURL (00081190) is {url!r}, expected {want!r}")
    summary.append("QIDO RetrieveURL (0008,1190) absolute, with the request's host and port")

    log(f"anonymized: study={study} series={series} sop={sop} PatientID={pseud_id!r} PatientName={pseud_name!r}")
    summary.append("QIDO-RS studies/series/instances at every level, PatientID pseudonym, limit/offset")

    # -- WADO-RS: first retrieval ----------------------------------------------
    ds = consumer.retrieve_instance(study, series, sop)
    check(isinstance(ds, Dataset), f"WADO retrieve_instance: expected a dataset, got {type(ds)}")
    check(str(ds.SOPInstanceUID) == sop, f"WADO instance: SOPInstanceUID {ds.get('SOPInstanceUID')} != {sop}")
    check(str(ds.SOPInstanceUID) != orig_sop, "WADO instance: SOPInstanceUID is the original one")
    check(str(ds.StudyInstanceUID) == study, f"WADO instance: StudyInstanceUID {ds.get('StudyInstanceUID')} != {study}")
    check(str(ds.SeriesInstanceUID) == series, f"WADO instance: SeriesInstanceUID {ds.get('SeriesInstanceUID')} != {series}")
    check(str(ds.get("PatientName", "")) != orig_name, f"WADO instance: PatientName is the original {orig_name!r}")
    check(str(ds.get("PatientID", "")) != orig_id, f"WADO instance: PatientID is the original {orig_id!r}")
    check(str(ds.get("PatientID", "")) == str(pseud_id), f"WADO instance: PatientID {ds.get('PatientID')!r} != QIDO's {pseud_id!r}")
    if getattr(ds, "file_meta", None) is not None and "MediaStorageSOPInstanceUID" in ds.file_meta:
        check(
            str(ds.file_meta.MediaStorageSOPInstanceUID) == sop,
            f"WADO instance: MediaStorageSOPInstanceUID {ds.file_meta.MediaStorageSOPInstanceUID} != SOPInstanceUID {sop}",
        )
        assert_no_phi_in_dataset(ds.file_meta, phi, uids, "WADO instance file meta")
    check(ds.Rows == original.Rows and ds.Columns == original.Columns, "WADO instance: Rows/Columns differ from the original")
    check("PixelData" in ds and len(ds.PixelData) > 0, "WADO instance: no PixelData")
    assert_no_phi_in_dataset(ds, phi, uids, "WADO instance")
    log(
        "WADO instance: "
        + ", ".join(f"{kw}={ds.get(kw)!r}" for kw in ("PatientName", "PatientID", "PatientBirthDate", "InstitutionName", "StudyDate"))
        + f", transfer syntax {ds.file_meta.get('TransferSyntaxUID') if getattr(ds, 'file_meta', None) else None}"
    )
    summary.append("WADO-RS retrieve_instance: anonymized dataset, no original PHI or UIDs")

    meta = consumer.retrieve_instance_metadata(study, series, sop)
    check(isinstance(meta, dict), f"WADO instance metadata: expected one DICOM JSON object, got {type(meta)}")
    mds = from_json(meta, "WADO instance metadata")
    check(str(mds.get("SOPInstanceUID", "")) == sop, f"WADO instance metadata: SOPInstanceUID != {sop}: {meta}")
    check(str(mds.get("PatientID", "")) == str(pseud_id), f"WADO instance metadata: PatientID != {pseud_id!r}")
    check(str(mds.get("PatientName", "")) != orig_name, "WADO instance metadata: PatientName is the original")
    assert_no_phi_in_dataset(mds, phi, uids, "WADO instance metadata")
    for name, fetch in (
        ("series", lambda: consumer.retrieve_series_metadata(study, series)),
        ("study", lambda: consumer.retrieve_study_metadata(study)),
    ):
        got = fetch()
        check(isinstance(got, list) and len(got) == 1, f"WADO {name} metadata: expected a list of 1, got {got!r}"[:2000])
        gds = from_json(got[0], f"WADO {name} metadata")
        check(str(gds.get("SOPInstanceUID", "")) == sop, f"WADO {name} metadata: SOPInstanceUID != {sop}")
        assert_no_phi_in_dataset(gds, phi, uids, f"WADO {name} metadata")
    meta_url = f"{args.base}/studies/{study}/series/{series}/instances/{sop}/metadata"
    r = requests.get(
        meta_url,
        headers={"Authorization": f"Bearer {args.consumer_token}", "Accept": "application/dicom+json"},
        timeout=30,
    )
    check(r.status_code == 200, f"GET {meta_url}: {r.status_code} {r.text[:500]}")
    check(r.headers.get("Content-Type", "").startswith("application/dicom+json"), f"GET {meta_url}: Content-Type {r.headers.get('Content-Type')}")
    etag = r.headers.get("ETag")
    check(etag, f"GET {meta_url}: no ETag header ({dict(r.headers)})")
    r304 = requests.get(
        meta_url,
        headers={"Authorization": f"Bearer {args.consumer_token}", "Accept": "application/dicom+json", "If-None-Match": etag},
        timeout=30,
    )
    log(f"metadata ETag {etag}; If-None-Match answered {r304.status_code}")
    summary.append("WADO-RS metadata at instance/series/study level, ETag")

    # -- billing: the first retrieval is charged the price ------------------------
    b0 = int(before["saldo_pendiente"])
    after = poll(
        f"the provider's balance to move from {b0}",
        lambda: (lambda b: b if int(b["saldo_pendiente"]) != b0 else None)(balance()),
        args.poll_secs,
    )
    # A moment more, in case the charge lands in pieces.
    time.sleep(1.0)
    after = balance()
    delta = int(after["saldo_pendiente"]) - b0
    check(
        delta == args.price,
        f"billing: the balance went up by {delta}, expected exactly the price {args.price} (before {before}, after {after})",
    )
    log(f"provider balance after the first retrieval: {after}")
    summary.append(f"billing: +{delta} {after.get('currency')} for the first retrieval")

    # -- the same instance again, within the repeat window: no new charge ---------
    again = consumer.retrieve_instance(study, series, sop)
    check(str(again.SOPInstanceUID) == sop, "WADO instance (again): wrong SOPInstanceUID")
    for name, fetch in (
        ("series", lambda: list(consumer.retrieve_series(study, series))),
        ("study", lambda: list(consumer.retrieve_study(study))),
    ):
        got = fetch()
        check(len(got) == 1 and str(got[0].SOPInstanceUID) == sop, f"WADO {name}: expected the one instance {sop}, got {len(got)}")
        assert_no_phi_in_dataset(got[0], phi, uids, f"WADO {name}")
    inst_url = f"{args.base}/studies/{study}/series/{series}/instances/{sop}"
    raw = requests.get(
        inst_url,
        headers={"Authorization": f"Bearer {args.consumer_token}", "Accept": MULTIPART_DICOM},
        timeout=30,
    )
    check(raw.status_code == 200, f"GET {inst_url}: {raw.status_code} {raw.text[:500]}")
    check(
        raw.headers.get("Content-Type", "").lower().startswith("multipart/related"),
        f"GET {inst_url}: Content-Type {raw.headers.get('Content-Type')}",
    )
    assert_no_phi_in_bytes(raw.content, phi, uids, f"GET {inst_url}")
    summary.append(f"raw WADO response ({len(raw.content)} bytes) holds none of the original PHI/UIDs")

    # -- what a web viewer asks for: frames, rendered frames, thumbnails, bulk data ---------
    rows, cols = int(ds.Rows), int(ds.Columns)
    frame_bytes = rows * cols * int(ds.SamplesPerPixel) * (int(ds.BitsAllocated) // 8)
    frames = consumer.retrieve_instance_frames(study, series, sop, frame_numbers=[1])
    check(len(frames) == 1, f"WADO frames: expected one frame, got {len(frames)}")
    if not ds.file_meta.TransferSyntaxUID.is_compressed:
        check(len(frames[0]) == frame_bytes, f"WADO frames: {len(frames[0])} bytes, expected {frame_bytes}")
        check(frames[0] == ds.PixelData[:frame_bytes], "WADO frames: the frame is not the instance's pixels")
    summary.append(f"WADO-RS frames: frame 1, {len(frames[0])} bytes, the instance's own pixels")
    for media, fmt in (("image/jpeg", "JPEG"), ("image/png", "PNG")):
        rendered = consumer.retrieve_instance_frames_rendered(study, series, sop, frame_numbers=[1], media_types=(media,))
        img = Image.open(io.BytesIO(rendered))
        check(img.format == fmt and img.size == (cols, rows), f"rendered frame as {media}: {img.format} {img.size}, expected {fmt} {(cols, rows)}")
        small = consumer.retrieve_instance_rendered(study, series, sop, media_types=(media,), params={"viewport": "32,32"})
        size = Image.open(io.BytesIO(small)).size
        check(max(size) == 32, f"rendered instance with viewport 32,32 as {media}: {size}")
    thumb_url = f"{inst_url}/thumbnail"
    thumb = requests.get(thumb_url, headers={"Authorization": f"Bearer {args.consumer_token}", "Accept": "image/jpeg"}, timeout=30)
    check(thumb.status_code == 200, f"GET {thumb_url}: {thumb.status_code} {thumb.text[:300]}")
    tsize = Image.open(io.BytesIO(thumb.content)).size
    check(0 < max(tsize) <= 128, f"thumbnail: {tsize}, expected at most 128 a side")
    summary.append(f"WADO-RS rendered frame and instance (JPEG, PNG, viewport) and thumbnail {tsize}, decoded by Pillow")
    bulk_uri = meta.get("7FE00010", {}).get("BulkDataURI")
    check(bulk_uri and bulk_uri.startswith(args.base), f"metadata: Pixel Data has no BulkDataURI under {args.base}: {meta.get('7FE00010')}")
    bulk = consumer.retrieve_bulkdata(bulk_uri)
    check(len(bulk) >= 1 and bulk[0] == frames[0], "bulk data through the BulkDataURI: not the instance's frames")
    summary.append("WADO-RS bulk data through the metadata's BulkDataURI: the instance's frames")

    deadline = time.monotonic() + args.settle_secs
    while True:
        now = balance()
        check(
            int(now["saldo_pendiente"]) == int(after["saldo_pendiente"]),
            f"billing: retrieving the same instance again within the repeat window charged again: "
            f"{after['saldo_pendiente']} -> {now['saldo_pendiente']} ({now})",
        )
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    summary.append(f"billing: repeat retrievals (instance, series, study, raw) within the window: no new charge over {args.settle_secs:.0f} s")

    # -- paging through more than 100 studies -----------------------------------------
    extra = 105
    copies = []
    for _ in range(extra):
        d = pydicom.dcmread(args.fixture)
        d.StudyInstanceUID = pydicom.uid.generate_uid()
        d.SeriesInstanceUID = pydicom.uid.generate_uid()
        d.SOPInstanceUID = pydicom.uid.generate_uid()
        d.file_meta.MediaStorageSOPInstanceUID = d.SOPInstanceUID
        copies.append(d)
    for at in range(0, extra, 35):
        stored = provider.store_instances(copies[at : at + 35])
        check("FailedSOPSequence" not in stored or len(stored.FailedSOPSequence) == 0, f"STOW of copies: failures:\n{stored}")
    want = extra + 1

    def every_study(page):
        seen, offset = [], 0
        while True:
            got = consumer.search_for_studies(limit=page, offset=offset)
            seen += [tag_value(s, "0020000D") for s in got]
            if len(got) < page:
                return seen
            offset += page

    poll(f"{want} anonymized studies", lambda: len(every_study(1000)) >= want or None, args.poll_secs)
    seen = every_study(50)
    check(len(seen) == want and len(set(seen)) == want, f"QIDO pages of 50: {len(seen)} studies, {len(set(seen))} distinct, expected {want}")
    r = requests.get(
        f"{args.base}/studies",
        headers={"Authorization": f"Bearer {args.consumer_token}", "Accept": "application/dicom+json"},
        timeout=30,
    )
    warning = r.headers.get("Warning", "")
    check(r.status_code == 200 and len(r.json()) == 100, f"QIDO /studies: {r.status_code}, {len(r.json())} studies, expected the first 100")
    check("offset=100" in warning, f"QIDO /studies cut at 100 without saying so: Warning {warning!r}")
    summary.append(f"QIDO paging: {want} studies in pages of 50; the default page of 100 says it was cut ({warning})")
    return summary


def main():
    args = parse_args()
    try:
        summary = run(args)
    except CheckFailed as e:
        print(f"FAILED: {e}", file=sys.stderr, flush=True)
        return 1
    except requests.exceptions.HTTPError as e:
        r = e.response
        detail = ""
        if r is not None:
            detail = (
                f"\n  request: {r.request.method} {r.request.url}\n  request headers: {dict(r.request.headers)}"
                f"\n  response: {r.status_code} {dict(r.headers)}\n  body: {r.text[:2000]}"
            )
        print(f"FAILED: HTTP error from the server: {e}{detail}", file=sys.stderr, flush=True)
        traceback.print_exc()
        return 1
    except Exception as e:  # noqa: BLE001 - anything else is a failure too, with its trace
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        traceback.print_exc()
        return 1
    print("dicomweb-client against Alpes: all checks passed")
    for line in summary:
        print(f"  ok  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
