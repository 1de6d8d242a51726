-- The relaxation of Ioffe, "Batch Renormalization" (NIPS 2017), section 4:
-- r_max and d_max start at 1 and 0 (plain batch norm) and are relaxed
-- gradually after 5k steps, to r_max = 3 at 40k and d_max = 5 at 25k.
return {
  r_max = ramp(5000, 40000, 1, 3),
  d_max = ramp(5000, 25000, 0, 5),
}
