"""The policy: how the system decides (thresholds, switches), reviewed in ``policies/*.toml``.

``model`` holds the whole policy and its loader; ``answers`` the sections for retrieval,
generation and the write-back gates; ``defences`` the poisoning defences a request may
override. Everything is importable from here.
"""

from bragserve.policy.answers import (AttributionPolicy, ChunkingPolicy, ContradictionPolicy, GenerationPolicy,
                                      GroundingPolicy, LoopPolicy, NoveltyPolicy, RetrievalPolicy, WritebackPolicy)
from bragserve.policy.defences import (DEFENCE_SECTIONS, CorroborationPolicy, DisfluentMatchPolicy, EchoPolicy,
                                       FloodPolicy, IngestScreeningPolicy, RagMaskPolicy, RagPartPolicy,
                                       ScreeningPolicy)
from bragserve.policy.model import DEFAULT_POLICY_PATH, Policy, load_policy

__all__ = ["DEFAULT_POLICY_PATH", "DEFENCE_SECTIONS", "AttributionPolicy", "ChunkingPolicy", "ContradictionPolicy",
           "CorroborationPolicy", "DisfluentMatchPolicy", "EchoPolicy", "FloodPolicy", "GenerationPolicy",
           "GroundingPolicy", "IngestScreeningPolicy", "LoopPolicy", "NoveltyPolicy", "Policy", "RagMaskPolicy",
           "RagPartPolicy", "RetrievalPolicy", "ScreeningPolicy", "WritebackPolicy", "load_policy"]
