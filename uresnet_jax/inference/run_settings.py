"""What one `predict` run is asked for besides its model and scans: one value every part reads."""
import dataclasses

import ml_collections


@dataclasses.dataclass(frozen=True)
class RunSettings:
  """The settings a run's results depend on (all but `model_name` are in its fingerprint)."""
  options: ml_collections.ConfigDict  # config.predict: lesion size, intervals, QC slices, ...
  model_name: str = ""  # the model as report.md, report.html and the BIDS description name it
  checksum: str = ""  # of the model's files (checksum.model_checksum)
  probabilities: bool = False  # also write each scan's class probabilities
  bids: bool = False  # write a BIDS-derivatives dataset
