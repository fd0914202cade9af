"""Write-back gates: entailment, attribution, novelty, screening, decision."""
