# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The measuring options health_gate and canary_analysis share: both take count measurements every
    # interval and give a measurement without data an explicit verdict (the "no data" gap of Argo and Flagger).
    DOCUMENTATION = r"""
options:
  interval:
    description: Seconds between measurements.
    type: float
    default: 30
  count:
    description: How many measurements to take at most.
    type: int
    default: 1
  no_data:
    description:
      - The verdict of a measurement without data, unless the condition or metric sets its own C(no_data).
      - V(inconclusive) (the default) neither passes nor fails the measurement; it counts against the
        inconclusive limit.
    type: str
    choices: [pass, fail, inconclusive]
    default: inconclusive
  timeout:
    description: Seconds to wait for each Prometheus answer.
    type: float
    default: 10
"""
