-- r = 1 and d = 0 at every step: batch_renorm computes exactly batch_norm.
return {
  r_max = constant(1),
  d_max = constant(0),
}
