"""Finding each subject's visits: --baseline/--followup, a manifest with a visit column, a BIDS
dataset with sessions; brain masks per visit; single visits and bad flags."""
import nibabel as nib
import numpy as np
import pytest

from uresnet_jax.common.errors import InputError
from uresnet_jax.longitudinal import visits


def _nifti(path):
  path.parent.mkdir(parents=True, exist_ok=True)
  nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), path)
  return path


def test_split_list_takes_repeats_and_commas():
  assert visits.split_list(["a.nii,b.nii", " c.nii "]) == ["a.nii", "b.nii", "c.nii"]
  assert visits.split_list(None) == []


def test_baseline_and_followups_are_one_subject_in_order_with_a_mask_per_visit(tmp_path):
  files = [_nifti(tmp_path / f"{n}.nii.gz") for n in ("s1_v1", "s1_v2", "s1_v3")]
  mask = _nifti(tmp_path / "mask.nii.gz")
  [subject] = visits.find_subjects(baseline=str(files[0]), followups=[str(files[1]), str(files[2])],
                                   masks={"brain_mask": ["", str(mask), ""],
                                          "exclusion": [str(mask), "", ""]})
  assert subject.name == "s1" and not subject.problem  # the words the file names share
  assert [v.name for v in subject.visits] == ["v1", "v2", "v3"]
  assert [v.record.brain_mask for v in subject.visits] == [None, mask, None]
  assert [v.record.exclusion for v in subject.visits] == [mask, None, None]
  with pytest.raises(InputError, match="--exclusion_mask names 2 file.*3 visit"):
    visits.find_subjects(baseline=str(files[0]), followups=[str(files[1]), str(files[2])],
                         masks={"exclusion": [str(mask), str(mask)]})


def test_files_sharing_no_words_or_every_word_are_named_for_the_baseline_and_their_order(tmp_path):
  a, b = _nifti(tmp_path / "a" / "FLAIR.nii.gz"), _nifti(tmp_path / "b" / "FLAIR.nii.gz")
  [subject] = visits.find_subjects(baseline=str(a), followups=[str(b)])
  assert subject.name == "FLAIR" and [v.name for v in subject.visits] == ["baseline", "followup"]
  c, d = _nifti(tmp_path / "first.nii.gz"), _nifti(tmp_path / "second.nii.gz")
  [subject] = visits.find_subjects(baseline=str(c), followups=[str(d)])
  assert subject.name == "first" and [v.name for v in subject.visits] == ["first", "second"]


def test_a_single_visit_or_a_missing_file_is_one_clear_line(tmp_path):
  scan = _nifti(tmp_path / "scan.nii.gz")
  with pytest.raises(InputError, match="nothing to compare"):
    visits.find_subjects(baseline=str(scan))
  with pytest.raises(InputError, match="missing.nii.gz: not a NIfTI"):
    visits.find_subjects(baseline=str(scan), followups=[str(tmp_path / "missing.nii.gz")])
  with pytest.raises(InputError, match="not both"):
    visits.find_subjects(str(tmp_path), baseline=str(scan), followups=[str(scan)])


def test_a_manifest_lists_visits_in_its_order_and_flags_a_single_visit(tmp_path):
  for name in ("a1", "a2", "b1"):
    _nifti(tmp_path / f"{name}.nii.gz")
  _nifti(tmp_path / "a2_mask.nii.gz")
  (tmp_path / "subjects.csv").write_text(
      "subject,visit,flair,brain_mask\n"
      "A,month24,a2.nii.gz,a2_mask.nii.gz\nA,month0,a1.nii.gz,\nB,month0,b1.nii.gz,\n")
  a, b = visits.find_subjects(str(tmp_path))
  assert [v.name for v in a.visits] == ["month24", "month0"]  # the manifest's order: baseline first
  assert a.visits[0].record.brain_mask == tmp_path / "a2_mask.nii.gz" and not a.problem
  assert "single visit" in b.problem
  (tmp_path / "twice.csv").write_text("subject,visit,flair\nA,v1,a1.nii.gz\nA,v1,a2.nii.gz\n")
  with pytest.raises(InputError, match="subject A visit v1 is listed twice"):
    visits.find_subjects(str(tmp_path / "twice.csv"))
  (tmp_path / "novisit.csv").write_text("subject,flair\nA,a1.nii.gz\n")
  with pytest.raises(InputError, match="lacks required column.*visit"):
    visits.find_subjects(str(tmp_path / "novisit.csv"))


def test_a_bids_dataset_gives_sessions_in_natural_order_with_masks_from_a_folder(tmp_path):
  root = tmp_path / "bids"
  for session in ("ses-2", "ses-10"):
    _nifti(root / "sub-01" / session / "anat" / f"sub-01_{session}_FLAIR.nii.gz")
  _nifti(root / "sub-02" / "anat" / "sub-02_FLAIR.nii.gz")
  masks = tmp_path / "masks"
  _nifti(masks / "sub-01_ses-10.nii.gz")
  one, two = visits.find_subjects(str(root), masks={"brain_mask": [str(masks)]})
  assert one.name == "sub-01" and [v.name for v in one.visits] == ["ses-2", "ses-10"]
  assert [v.record.brain_mask for v in one.visits] == [None, masks / "sub-01_ses-10.nii.gz"]
  assert not one.problem and "ses-*" in two.problem
