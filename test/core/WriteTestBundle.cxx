/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Writes a small model bundle with known values for test/python/test_model_bundle.py.
#include "agcl/ModelBundle.h"

#include <torch/torch.h>

#include <iostream>

int
main(int argc, char ** argv)
{
  if (argc != 2)
  {
    std::cerr << "usage: " << argv[0] << " OUTPUT.agcl" << std::endl;
    return 1;
  }
  agcl::ModelBundle bundle;
  bundle.config = { { "patch_size", 64 }, { "organs", { "spleen", "liver" } } };
  bundle.Add("ramp", (torch::arange(24, torch::kFloat) * 0.25).view({ 2, 3, 4 }));
  bundle.Add("ids", torch::tensor({ int64_t{ 3 }, int64_t{ -1 }, int64_t{ 1 } << 40 }, torch::kLong));
  bundle.Add("mask", torch::tensor({ true, false }));
  bundle.Add("half", torch::tensor({ 0.5f }).to(torch::kHalf));
  bundle.Save(argv[1]);
  return 0;
}
