/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/Threading.h"

#include <gtest/gtest.h>

#include <stdexcept>

TEST(Threading, ExplicitRequestWins)
{
  EXPECT_EQ(agcl::ResolveThreadCount(3, "5", 8), 3);
}

TEST(Threading, EnvironmentOverridesCoreCount)
{
  EXPECT_EQ(agcl::ResolveThreadCount(0, "5", 8), 5);
}

TEST(Threading, CoreCountWhenNothingElseIsGiven)
{
  EXPECT_EQ(agcl::ResolveThreadCount(0, nullptr, 8), 8);
  EXPECT_EQ(agcl::ResolveThreadCount(0, "", 8), 8);
  EXPECT_EQ(agcl::ResolveThreadCount(0, nullptr, 0), 1); // hardware_concurrency() may report 0
}

TEST(Threading, BadEnvironmentValueIsRefusedWithItsName)
{
  for (const char * bad : { "abc", "0", "-2", "3x", "100000" })
  {
    try
    {
      agcl::ResolveThreadCount(0, bad, 8);
      ADD_FAILURE() << "no exception for AGCL_NUM_THREADS=" << bad;
    }
    catch (const std::invalid_argument & e)
    {
      EXPECT_NE(std::string(e.what()).find("AGCL_NUM_THREADS"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(agcl::ResolveThreadCount(-1, nullptr, 8), std::invalid_argument);
}

TEST(Threading, ConfigureSetsLibTorchThreadCount)
{
  EXPECT_EQ(agcl::ConfigureThreads(3), 3);
  EXPECT_EQ(agcl::CurrentThreads(), 3);
  // A later call without a request keeps the configured value.
  EXPECT_EQ(agcl::ConfigureThreads(), 3);
  EXPECT_EQ(agcl::ConfigureThreads(1), 1);
  EXPECT_EQ(agcl::CurrentThreads(), 1);
}
