/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_test_RemoveAtExit_h
#define agcl_test_RemoveAtExit_h

#include <filesystem>
#include <system_error>

namespace agcl::test {

/** Removes a test program's scratch folder (and everything in it) when the program ends: hold
 *  one as a function-local static where the folder is made. Not copyable (a copy would remove
 *  the folder early). A crashed program leaves its folder, which helps to look at the failure. */
class RemoveAtExit
{
public:
  explicit RemoveAtExit(std::filesystem::path folder)
    : m_Folder(std::move(folder))
  {}
  RemoveAtExit(const RemoveAtExit &) = delete;
  RemoveAtExit &
  operator=(const RemoveAtExit &) = delete;
  ~RemoveAtExit()
  {
    std::error_code ignored;
    std::filesystem::remove_all(m_Folder, ignored);
  }

private:
  std::filesystem::path m_Folder;
};

} // namespace agcl::test

#endif
