# vkd_install_pc(TEMPLATE NAME): a pkg-config file written at install time
# for the prefix being installed into (so `cmake --install build --prefix DIR`
# gives a .pc that points into DIR). The template may use @prefix@,
# @includedir@, @libdir@ and @version@.
function(vkd_install_pc template name)
        set(out ${CMAKE_CURRENT_BINARY_DIR}/${name})
        install(CODE "
                set(prefix \"\${CMAKE_INSTALL_PREFIX}\")
                set(includedir \"${CMAKE_INSTALL_INCLUDEDIR}\")
                set(libdir \"${CMAKE_INSTALL_LIBDIR}\")
                set(version \"${PROJECT_VERSION}\")
                foreach(v includedir libdir)
                        if(NOT IS_ABSOLUTE \"\${\${v}}\")
                                set(\${v} \"\\\${prefix}/\${\${v}}\")
                        endif()
                endforeach()
                configure_file(\"${template}\" \"${out}\" @ONLY)
        ")
        install(FILES ${out} DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endfunction()
