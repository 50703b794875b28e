# libzsaga: the C client API and the worker runtime (barrier, drivers,
# pool, migrations), installed for workers and services built outside
# this tree: `cmake --install build --prefix PREFIX` gives
#   PREFIX/lib/libzsaga.so.0 (soname, ABI 0) and libzsaga.a
#   PREFIX/include/zsaga/zsaga.h and the headers it includes
#   PREFIX/lib/pkgconfig/zsaga.pc     pkg-config --cflags --libs zsaga
# deploy/examples/notify/c builds a worker against it (tests/e2e/install.sh).
set(ZSAGA_LIB_OBJS zsaga_common_obj zsaga_messages_obj zsaga_wrk_obj zsaga_client_obj)
set(ZSAGA_LIB_OBJ_FILES)
foreach(o ${ZSAGA_LIB_OBJS})
  list(APPEND ZSAGA_LIB_OBJ_FILES $<TARGET_OBJECTS:${o}>)
endforeach()

add_library(zsaga_shared SHARED ${ZSAGA_LIB_OBJ_FILES})
target_link_libraries(zsaga_shared PRIVATE ${ZSAGA_LIB_OBJS})
set_target_properties(zsaga_shared PROPERTIES OUTPUT_NAME zsaga VERSION ${PROJECT_VERSION} SOVERSION 0)
add_library(zsaga_static STATIC ${ZSAGA_LIB_OBJ_FILES})
set_target_properties(zsaga_static PROPERTIES OUTPUT_NAME zsaga)

# lib and include, fixed: zsaga.pc finds them relative to itself.
set(CMAKE_INSTALL_LIBDIR lib)
set(CMAKE_INSTALL_INCLUDEDIR include)
install(TARGETS zsaga_shared zsaga_static
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
# The headers keep the tree's layout under include/zsaga/, so their own
# includes ("messages/msg.h") resolve with -I PREFIX/include/zsaga.
install(FILES ${CMAKE_SOURCE_DIR}/deploy/libzsaga/zsaga.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/zsaga)
install(FILES ${CMAKE_SOURCE_DIR}/client/zsc.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/zsaga/client)
foreach(dir messages workers common)
  file(GLOB hdrs ${CMAKE_SOURCE_DIR}/${dir}/*.h)
  install(FILES ${hdrs} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/zsaga/${dir})
endforeach()
configure_file(${CMAKE_SOURCE_DIR}/deploy/libzsaga/zsaga.pc.in ${CMAKE_BINARY_DIR}/zsaga.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/zsaga.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
